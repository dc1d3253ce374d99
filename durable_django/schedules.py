"""``durable.schedule()``: cron and interval schedules for workflows, declared in code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .core import registry
from .core.schedules import Overlap, ScheduleDefinition, build, declare
from .exceptions import InvalidSchedule

if TYPE_CHECKING:
    from .models import Schedule, WorkflowRun

__all__ = ["Overlap", "ScheduleDefinition", "pause", "resume", "schedule", "trigger"]


def _workflow(workflow: object) -> registry.WorkflowCode:
    if isinstance(workflow, str):
        return registry.workflow(workflow)  # WorkflowNotRegistered, with a close name if there is one
    if getattr(workflow, "durable_kind", None) == "workflow":
        return registry.workflow(workflow.name)  # type: ignore[attr-defined]
    what = "a step; schedule a workflow that yields it" if getattr(workflow, "durable_kind", None) else repr(workflow)
    raise InvalidSchedule(
        f"durable.schedule() needs a @durable.workflow (or its registered name), not {what}; "
        "decorate the function with @durable.workflow."
    )


def schedule(
    name: str,
    workflow: Any,
    *,
    cron: str | None = None,
    every: timedelta | None = None,
    timezone: str | None = None,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    overlap: Overlap | str = Overlap.SKIP,
    catch_up: int = 1,
    jitter: timedelta | None = None,
) -> ScheduleDefinition:
    """Start ``workflow(*args, **kwargs)`` at every tick of ``cron`` (in ``timezone``) or ``every``.

    Declare it at import time (in an app's ``schedules.py`` or ``workflows.py``, both
    discovered). Every worker writes the declared schedules to the database when it
    starts (``manage.py durable_schedules --sync`` does it too), and the workers' sweepers
    fire each tick once, as the run ``"<name>@<tick in UTC>"``. ``overlap`` says what a
    tick does while the previous run is live (``"skip"``, ``"allow"``,
    ``"cancel_previous"``); ``catch_up`` how many missed ticks fire after a downtime (the
    latest ones); ``jitter`` delays each tick by up to that much.

    Bad input raises :class:`~durable_django.InvalidSchedule` here, naming the fix.
    """
    definition = build(
        name, _workflow(workflow), args=args, kwargs=kwargs, cron=cron, every=every, timezone=timezone,
        overlap=overlap, catch_up=catch_up, jitter=jitter,
    )  # fmt: skip
    declare(definition)
    return definition


# What ``Schedule.pause()``, ``.resume()`` and ``.trigger()`` call: the store does the work.
def pause(schedule: Schedule) -> None:
    """Stop firing ``schedule`` until it is resumed; ticks in between are not caught up."""
    from .store import schedules

    schedules.pause(schedule)


def resume(schedule: Schedule) -> None:
    """Fire ``schedule`` again from its first tick after now."""
    from .store import schedules

    schedules.resume(schedule)


def trigger(schedule: Schedule) -> WorkflowRun | None:
    """Start the schedule's workflow now as ``<name>@manual-<now>``, under its overlap policy; None if skipped."""
    from .store import schedules

    return schedules.trigger(schedule)
