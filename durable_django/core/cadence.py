"""When a schedule's ticks fall: a cron expression in a time zone, or a fixed interval.

Pure: instants in, instants out, no clock of its own. The store asks :func:`due` with the
database's time, so what is due never depends on a worker's clock.

Cron expressions are parsed and iterated by ``cronsim`` (the evaluator Healthchecks.io runs
on millions of cron checks), which follows Debian cron's rules, including in daylight
saving time changes: a time that does not exist on the day clocks go forward fires right
after the jump (02:30 becomes 03:00 in Paris), and a time that happens twice on the day they
go back fires once, at its first occurrence. Expressions whose hour field is a wildcard
(``*/15 * * * *``) fire by real elapsed time, so they tick in the repeated hour too.
Intervals (``every=``) are instants counted from the Unix epoch in UTC, with no time zone.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from ..exceptions import InvalidSchedule

__all__ = ["MAX_SCAN", "Cadence", "Due", "due", "jitter_for"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: Ticks one call of :func:`due` walks at most; the rest waits for the next sweep.
MAX_SCAN = 1000
_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_HELP = (
    "use 5 fields, minute hour day-of-month month day-of-week, each a number, *, a range (1-5), "
    "a step (*/15), a list (1,15) or a name (MON, JAN), such as '0 2 * * *' (02:00 every day)"
)


@lru_cache(maxsize=64)
def _zone(name: object) -> tzinfo:
    if not isinstance(name, str) or not name:
        raise InvalidSchedule(f"timezone={name!r}: pass an IANA time zone name such as 'Europe/Paris' or 'UTC'.")
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidSchedule(
            f"timezone={name!r} is not a known time zone; {hint}pass an IANA name such as 'Europe/Paris' or 'UTC'."
        ) from None


def _cron(expression: object) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidSchedule(f"cron={expression!r}: {_CRON_HELP}.")
    text = _NICKNAMES.get(expression.strip().lower(), expression.strip())
    if len(text.split()) != 5:
        raise InvalidSchedule(f"cron={expression!r} has {len(text.split())} fields; {_CRON_HELP}.")
    try:
        next(CronSim(text, datetime(2000, 1, 1, tzinfo=UTC)))
    except CronSimError as error:
        raise InvalidSchedule(f"cron={expression!r} is not a valid cron expression ({error}); {_CRON_HELP}.") from None
    except StopIteration:
        raise InvalidSchedule(f"cron={expression!r} never fires; {_CRON_HELP}.") from None
    return text


@dataclass(frozen=True, slots=True)
class Cadence:
    """A cron expression in a time zone, or an interval; build it with :meth:`of`, which checks it."""

    cron: str | None
    every: timedelta | None
    timezone: str = "UTC"

    @classmethod
    def of(cls, *, cron: str | None = None, every: timedelta | None = None, timezone: str | None = None) -> Cadence:
        """The cadence, or :class:`InvalidSchedule` saying what to fix."""
        if (cron is None) == (every is None):
            given = "both" if cron is not None else "neither"
            raise InvalidSchedule(
                f"a schedule takes cron='0 2 * * *' or every=timedelta(hours=1); it got {given}. Pass exactly one."
            )
        if every is not None:
            if timezone not in (None, "UTC"):
                raise InvalidSchedule(
                    f"timezone={timezone!r} applies to cron schedules; every= ticks are instants counted from the "
                    "Unix epoch in UTC. Use cron='...' with timezone=... for times of day."
                )
            if not isinstance(every, timedelta) or every < timedelta(seconds=1) or every % timedelta(seconds=1):
                raise InvalidSchedule(f"every={every!r}: pass a timedelta of a whole number of seconds, at least 1.")
            return cls(None, every, "UTC")
        name = "UTC" if timezone is None else timezone
        _zone(name)
        return cls(_cron(cron), None, name)

    @property
    def zone(self) -> tzinfo:
        return _zone(self.timezone)

    def after(self, instant: datetime) -> datetime:
        """The first tick strictly after the aware ``instant``, in UTC."""
        if self.every is not None:
            count = (instant - _EPOCH) // self.every + 1
            return _EPOCH + count * self.every
        assert self.cron is not None
        ticks = CronSim(self.cron, instant.astimezone(self.zone))
        # Around a clock change cronsim counts in local time, so a tick can come out at or
        # before the start (the repeated hour): those are not after it.
        for _ in range(MAX_SCAN):
            tick = next(ticks).astimezone(UTC)
            if tick > instant:
                return tick
        raise InvalidSchedule(f"cron={self.cron!r} has no tick after {instant.isoformat()}")  # pragma: no cover

    def latest(self, instant: datetime, count: int) -> list[datetime]:
        """The ``count`` latest ticks at or before ``instant``, oldest first, in UTC."""
        if self.every is not None:
            last = (instant - _EPOCH) // self.every
            return [_EPOCH + index * self.every for index in range(last - count + 1, last + 1)]
        assert self.cron is not None
        found: list[datetime] = []
        ticks = CronSim(self.cron, (instant + timedelta(seconds=1)).astimezone(self.zone), reverse=True)
        for _ in range(count + MAX_SCAN):
            if len(found) == count:
                break
            try:
                tick = next(ticks).astimezone(UTC)
            except StopIteration:  # nothing for 50 years back
                break
            if tick <= instant and (not found or tick < found[-1]):
                found.append(tick)
        return found[::-1]

    def describe(self) -> str:
        """``At 02:00 every day (Europe/Paris)``, or ``every 1:00:00``."""
        if self.every is not None:
            return f"every {self.every}"
        assert self.cron is not None
        try:
            words = CronSim(self.cron, datetime(2000, 1, 1, tzinfo=UTC)).explain()
        except Exception:  # the explanation is a courtesy; the expression itself is valid
            words = self.cron
        return f"{words} ({self.timezone})"


def jitter_for(name: str, tick: datetime, jitter: timedelta) -> timedelta:
    """How long after ``tick`` schedule ``name`` fires: in ``[0, jitter]``, the same in every process.

    Derived from the name and the tick, so any worker that computes it agrees, and a test
    can predict it.
    """
    if jitter <= timedelta(0):
        return timedelta(0)
    digest = hashlib.sha256(f"{name}|{tick.astimezone(UTC).isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return (jitter * fraction) // _MICROSECOND * _MICROSECOND


@dataclass(frozen=True, slots=True)
class Due:
    """What a schedule must do now."""

    #: Ticks to fire now, oldest first: at most ``catch_up`` of them.
    fire: tuple[datetime, ...]
    #: The oldest tick that was due but is not fired (beyond ``catch_up``), if any.
    dropped_since: datetime | None
    #: The first tick not due yet, and when it is.
    next_tick: datetime
    next_fire_at: datetime


def due(cadence: Cadence, name: str, next_tick: datetime, now: datetime, *, catch_up: int, jitter: timedelta) -> Due:
    """The ticks from ``next_tick`` on that are due at ``now`` (``tick + its jitter <= now``), in order.

    Never early: a tick is due only once its time, plus its jitter, has come. After a
    downtime only the ``catch_up`` latest due ticks fire; the older ones are dropped.
    """
    start, dropped_since = next_tick, None
    horizon = now - jitter  # ticks up to here are due whatever their jitter
    if start <= horizon:
        recent = cadence.latest(horizon, catch_up)
        if recent and recent[0] > start:  # a long downtime: skip to the latest ticks without walking all
            start, dropped_since = recent[0], start
    fired: list[datetime] = []
    tick = start
    for _ in range(catch_up + MAX_SCAN):
        if tick + jitter_for(name, tick, jitter) > now:
            break
        fired.append(tick)
        tick = cadence.after(tick)
    if len(fired) > catch_up:
        dropped_since = dropped_since or fired[0]
        fired = fired[-catch_up:]
    return Due(tuple(fired), dropped_since, tick, tick + jitter_for(name, tick, jitter))
