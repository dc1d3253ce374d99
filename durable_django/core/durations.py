"""What a due time may be: durations and instants every database can hold.

A timer's due time is a row's column, so a wait too long for it (``timedelta.max``) or an
instant outside the years 1 to 9999 in UTC is refused where it is asked for, with the
reason, instead of failing every advance of the run afterwards.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from ..exceptions import InvalidRequest

__all__ = ["MAX_DURATION", "due_instant", "run_timeout", "wait_seconds"]


#: The longest wait a request may ask for: its end must stay a date every database can hold.
MAX_DURATION = timedelta(days=366 * 1000)


def wait_seconds(duration: object, what: str) -> float:
    """A wait's length in seconds: a timedelta of zero up to :data:`MAX_DURATION`."""
    if not isinstance(duration, timedelta):
        raise InvalidRequest(f"{what} takes a datetime.timedelta, not {duration!r}; for example timedelta(days=30).")
    seconds = duration.total_seconds()
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidRequest(f"{what} got {duration!r}; use a duration of zero or more.")
    if duration > MAX_DURATION:
        raise InvalidRequest(
            f"{what} got {duration!r}, longer than the 1,000 years a database can hold as a due time; "
            "use a shorter duration (sleep again in a loop to wait longer)."
        )
    return seconds


def run_timeout(timeout: object, what: str) -> timedelta:
    """A run's time limit: a positive timedelta (a deadline now or in the past would end it before it began)."""
    if not isinstance(timeout, timedelta):
        raise InvalidRequest(f"{what} takes a datetime.timedelta, not {timeout!r}; for example timedelta(days=8).")
    if timeout <= timedelta(0):
        raise InvalidRequest(
            f"{what} got {timeout!r}: a deadline now or in the past would cancel the run before it starts; "
            "pass a positive timedelta."
        )
    wait_seconds(timeout, what)  # at most the 1,000 years a database can hold
    return timeout


def due_instant(when: datetime, what: str) -> datetime:
    """An aware datetime whose UTC time a database can hold (``sleep_until``'s)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidRequest(
            f"{what} got a naive datetime; pass an aware one, such as django.utils.timezone.now() + timedelta(days=1)."
        )
    try:
        when.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(
            f"{what} falls beyond year 9999 (or before year 1) in UTC, which no database can hold as a due time; "
            "pass an instant within those years."
        ) from None
    return when
