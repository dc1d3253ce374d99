"""Schedule rows for tests, made as the admin or a sync would make them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from durable_django.models import Schedule, WorkflowRun
from durable_django.store import schedules
from durable_django.store.clock import database_now
from durable_django.store.leases import database


def make(name: str, workflow: str = "tests.echo", *, args: list[Any] | None = None, **fields: Any) -> Schedule:
    """An admin-made schedule, its next tick counted from now as the admin's save does."""
    args_json = '{"args":%s,"kwargs":{}}' % ("[1]" if args is None else str(args).replace("'", '"'))
    row = Schedule.objects.create(name=name, workflow_name=workflow, args_json=args_json, **fields)
    schedules.reschedule(row)
    row.refresh_from_db()
    return row


def start_at(row: Schedule, tick: datetime, *, due_in: timedelta = timedelta(seconds=1)) -> Schedule:
    """Put the schedule's next tick at ``tick`` (any date: a DST day, say), due ``due_in`` from now.

    The gap between the tick and the moved due time is the schedule's head start, as after
    ``pass_time``: the ticks after it keep their spacing.
    """
    fire_at = database_now(database()) + due_in
    Schedule.objects.filter(pk=row.pk).update(next_tick_at=tick, fire_at=fire_at)
    row.refresh_from_db()
    return row


def tick_runs(name: str) -> list[WorkflowRun]:
    """The runs a schedule's ticks started, oldest tick first."""
    return list(WorkflowRun.objects.filter(workflow_id__startswith=f"{name}@").order_by("workflow_id"))


def tick_ids(name: str) -> list[str]:
    return [run.workflow_id for run in tick_runs(name)]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)
