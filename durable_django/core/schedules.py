"""Schedules as values: which workflow a schedule starts, with which arguments, when, and how.

``durable.schedule()`` and the admin's schedule form both build a
:class:`ScheduleDefinition` here, so code and admin refuse the same bad input with the
same words. Schedules declared in code are kept in :func:`declared` until a worker (or
``manage.py durable_schedules --sync``) writes them to the database.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, cast

from ..exceptions import InvalidSchedule
from .cadence import Cadence
from .registry import WorkflowCode
from .requests import encode_arguments

__all__ = ["Overlap", "ScheduleDefinition", "build", "check_name", "declare", "declared", "forget"]

#: Room left in a run's 255-character workflow_id for ``@`` and the tick's instant.
MAX_NAME = 200


class Overlap(StrEnum):
    """What a tick does while the run of an earlier tick is still live (pending, running or waiting)."""

    #: Start nothing for this tick (the default, as Temporal's).
    SKIP = "skip"
    #: Start a run anyway; runs of several ticks go on side by side.
    ALLOW = "allow"
    #: Ask the earlier run to cancel (``Cancelled`` at its current yield) and start the new one.
    CANCEL_PREVIOUS = "cancel_previous"


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleDefinition:
    """A schedule: start ``workflow`` with these arguments at every tick of ``cadence``.

    ``catch_up`` is how many missed ticks fire after a downtime (the latest ones, in order;
    1 means only the latest). ``jitter`` delays each tick by up to that much, the same
    delay in every worker, never earlier than the tick.
    """

    name: str
    workflow: str
    args_json: str
    cadence: Cadence
    overlap: Overlap = Overlap.SKIP
    catch_up: int = 1
    jitter: timedelta = timedelta(0)

    def same_timing(self, other: ScheduleDefinition) -> bool:
        """True if both tick at the same instants, so an update keeps the next tick."""
        return (self.cadence, self.jitter) == (other.cadence, other.jitter)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or name != name.strip():
        raise InvalidSchedule(
            f"schedule name {name!r}: use 1 to {MAX_NAME} characters with no leading or trailing spaces, "
            "such as 'nightly-sync'."
        )
    if any(ord(char) < 32 for char in name):
        raise InvalidSchedule(f"schedule name {name!r} contains control characters; use printable text.")
    return name


def _options(name: str, overlap: object, catch_up: object, jitter: object) -> tuple[Overlap, int, timedelta]:
    choices = ", ".join(repr(choice.value) for choice in Overlap)
    try:
        policy = Overlap(cast(str, overlap))
    except ValueError:
        raise InvalidSchedule(f"schedule {name!r}: overlap={overlap!r}; use one of {choices}.") from None
    if not isinstance(catch_up, int) or isinstance(catch_up, bool) or catch_up < 1:
        raise InvalidSchedule(
            f"schedule {name!r}: catch_up={catch_up!r}; use an int of at least 1 "
            "(how many missed ticks fire after a downtime; 1 fires only the latest)."
        )
    spread = timedelta(0) if jitter is None else jitter
    if not isinstance(spread, timedelta) or spread < timedelta(0):
        raise InvalidSchedule(f"schedule {name!r}: jitter={jitter!r}; use a timedelta of zero or more, or None.")
    return policy, catch_up, spread


def build(
    name: object,
    workflow: WorkflowCode,
    *,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    cron: str | None = None,
    every: timedelta | None = None,
    timezone: str | None = None,
    overlap: object = Overlap.SKIP,
    catch_up: object = 1,
    jitter: object = None,
) -> ScheduleDefinition:
    """A checked definition, or :class:`InvalidSchedule` (``SerializationError`` for arguments) saying the fix."""
    name = check_name(name)
    try:
        cadence = Cadence.of(cron=cron, every=every, timezone=timezone)
    except InvalidSchedule as error:
        raise InvalidSchedule(f"schedule {name!r}: {error}") from None
    policy, count, spread = _options(name, overlap, catch_up, jitter)
    positional, named = list(args), dict(kwargs or {})
    try:
        inspect.signature(workflow.func).bind(*positional, **named)
    except TypeError as error:
        raise InvalidSchedule(
            f"schedule {name!r}: workflow {workflow.name!r} cannot be called with args={positional!r}, "
            f"kwargs={named!r}: {error}. Pass the workflow's own arguments as args=(...) and kwargs={{...}}."
        ) from None
    args_json = encode_arguments(positional, named, f"schedule {name!r}")
    return ScheduleDefinition(
        name=name, workflow=workflow.name, args_json=args_json, cadence=cadence, overlap=policy, catch_up=count,
        jitter=spread,
    )  # fmt: skip


_declared: dict[str, ScheduleDefinition] = {}


def declare(definition: ScheduleDefinition) -> None:
    """Keep a schedule declared in code; the same declaration again (a re-import) is fine."""
    existing = _declared.get(definition.name)
    if existing is not None and existing != definition:
        raise InvalidSchedule(
            f"two schedules are named {definition.name!r} with different settings; give one of them another name."
        )
    _declared[definition.name] = definition


def declared() -> tuple[ScheduleDefinition, ...]:
    """The schedules this process's code declares, by name."""
    return tuple(_declared[name] for name in sorted(_declared))


def forget(name: str) -> None:
    """Drop a declaration (tests that declare schedules of their own)."""
    _declared.pop(name, None)
