"""Time in tests: timers and schedules are database rows judged by the database's clock.

Instead of changing a clock, these bring pending timers (and retry waits) and the next
tick of schedules closer by the time that is meant to pass. Nothing fires before its
moved time, so "never early" stays checkable. Code that reads the clock itself (a step
calling ``timezone.now()``) still sees the real time, and a tick's run keeps the tick's own
instant in its ``workflow_id``.

Unscoped, both move every timer and schedule in the database. Pass ``run=`` or ``workflow=``
(a definition or its name) to move only those runs' timers, and their children's, and (with
``workflow=``) that workflow's schedules: outside a test database, in ``manage.py shell``,
anything else shifts other people's runs.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet

from ..core import registry
from ..core.schedules import declared
from ..definitions import WorkflowDefinition
from ..models import HistoryEntry, Schedule, WorkflowRun, WorkItem
from ..runs import get_run
from ..store import schedule_sync, schedules
from ..store.clock import Now
from ..store.leases import database
from ..store.querysets import HistoryQuerySet, ScheduleQuerySet, WorkItemQuerySet
from ..worker import sweeper
from ._inline import run_until_idle

__all__ = ["advance_time", "pass_time", "sync_schedules"]

#: Rounds of "fire the next timer, run until idle" one pass_time() takes at most.
_MAX_ROUNDS = 1000
#: Time moves this much past a timer's due time, so it is due by any database's clock
#: (SQLite's ``Now()`` counts milliseconds).
_TICK = timedelta(milliseconds=1)
#: Generations of children a scope follows at most (a deeper tree is a bug in the workflow).
_MAX_DEPTH = 100


class _Scope:
    """The runs time passes for: all of them, or some runs and their descendants (found anew each time)."""

    def __init__(
        self, using: str, run: WorkflowRun | str | None, workflow: WorkflowDefinition[Any] | str | None
    ) -> None:
        if run is not None and workflow is not None:
            raise TypeError("pass run= or workflow=, not both.")
        self.using = using
        self.roots: list[uuid.UUID] | None = None
        self.workflow: str | None = None
        if run is not None:
            self.roots = [get_run(run).pk]
        elif workflow is not None:
            self.workflow = workflow if isinstance(workflow, str) else workflow.name
            registry.resolve_workflow(self.workflow)  # an unknown name is a typo, not an empty scope

    def run_ids(self) -> list[uuid.UUID] | None:
        """The run ids in scope now, or None for every run."""
        runs = WorkflowRun.objects.using(self.using)
        if self.roots is None and self.workflow is None:
            return None
        found = self.roots or list(runs.filter(workflow_name=self.workflow).values_list("pk", flat=True))
        frontier = list(found)
        for _ in range(_MAX_DEPTH):
            frontier = list(runs.filter(parent_id__in=frontier).values_list("pk", flat=True))
            if not frontier:
                break
            found += frontier
        return found

    def items(self) -> WorkItemQuerySet:
        ids = self.run_ids()
        items = WorkItem.objects.using(self.using)
        return items if ids is None else items.filter(run_id__in=ids)

    def deadlines(self) -> QuerySet[WorkflowRun]:
        """The runs in scope with a deadline: ``deadline_at`` moves with its timer (a child is capped by it)."""
        ids = self.run_ids()
        runs = WorkflowRun.objects.using(self.using).filter(deadline_at__isnull=False)
        return runs if ids is None else runs.filter(pk__in=ids)

    def timed(self) -> HistoryQuerySet:
        ids = self.run_ids()
        entries = HistoryEntry.objects.using(self.using).timed()
        return entries if ids is None else entries.filter(run_id__in=ids)

    def schedules(self) -> ScheduleQuerySet:
        """Every schedule unscoped, a workflow's with ``workflow=``, none for one run."""
        rows = Schedule.objects.using(self.using)
        if self.roots is not None:
            return rows.none()
        return rows if self.workflow is None else rows.filter(workflow_name=self.workflow)


def advance_time(
    delta: timedelta, *, run: WorkflowRun | str | None = None, workflow: WorkflowDefinition[Any] | str | None = None
) -> int:
    """Act as if ``delta`` passed for pending timers; publish the ones now due to the broker.

    For tests with a real worker, which then fires them. Returns how many work items were
    published. In-process tests use :func:`pass_time` instead. Without ``run`` (a run or its
    ``workflow_id``) or ``workflow`` (a definition or its name), it moves every run's timers.
    """
    using = database()
    scope = _Scope(using, run, workflow)
    with transaction.atomic(using=using):
        scope.items().of_kind(WorkItem.Kind.TIMER).update(available_at=F("available_at") - delta, dispatched_at=None)
        scope.timed().update(fire_at=F("fire_at") - delta)
        scope.deadlines().update(deadline_at=F("deadline_at") - delta)
        scope.schedules().update(fire_at=F("fire_at") - delta)  # a worker's sweeper fires the ticks now due
    return sweeper.sweep()


def pass_time(
    delta: timedelta,
    *,
    run: WorkflowRun | str | None = None,
    workflow: WorkflowDefinition[Any] | str | None = None,
    max_items: int = 10_000,
) -> int:
    """Let ``delta`` pass: fire every timer, retry and schedule tick due by then, in order, working runs in between.

    Time moves from one due timer or tick to the next, so a timer set while this runs (a
    second sleep after the first one, say) fires too if it falls within ``delta``, and an
    hourly schedule fires each hour's run in turn. Schedules declared in code take part once
    :func:`sync_schedules` wrote them to the test database. Needs no Celery, and works inside
    a ``TestCase``. Returns how many work items were taken. ``run`` or ``workflow`` limit it to
    those runs and their children, as for :func:`advance_time`.
    """
    if delta < timedelta(0):
        raise ValueError(f"time only passes forward; {delta} is negative.")
    using = database()
    scope = _Scope(using, run, workflow)
    worked = 0
    remaining = delta
    for _ in range(_MAX_ROUNDS):
        schedules.sweep(using)
        worked += run_until_idle(max_items=max_items - worked)
        if remaining <= timedelta(0) or worked >= max_items:
            break
        upcoming = _upcoming(scope)
        if upcoming is None:
            if WorkItem.objects.using(using).claimable().exists() or scope.schedules().due().exists():
                continue  # a retry or a tick came due by itself since the last look: work it first
            break
        step = min(max(upcoming[0] - upcoming[1], timedelta(0)) + _TICK, remaining)
        _shift(using, scope, step)
        remaining -= step
    return worked


def _upcoming(scope: _Scope) -> tuple[datetime, datetime] | None:
    """The next time something in scope waits for, and the database's now: the earliest timer or tick."""
    found: list[Any] = [
        scope.items()
        .unleased()
        .filter(available_at__gt=Now())
        .annotate(now=Now())
        .order_by("available_at")
        .values_list("available_at", "now")
        .first(),
        scope.schedules()
        .active()
        .filter(fire_at__gt=Now())
        .annotate(now=Now())
        .order_by("fire_at")
        .values_list("fire_at", "now")
        .first(),
    ]
    upcoming: tuple[datetime, datetime] | None = min((when for when in found if when is not None), default=None)
    return upcoming


def _shift(using: str, scope: _Scope, step: timedelta) -> None:
    """Everything in scope that waits for a time gets ``step`` closer to it."""
    with transaction.atomic(using=using):
        scope.items().unleased().update(available_at=F("available_at") - step)
        scope.timed().update(fire_at=F("fire_at") - step)
        scope.deadlines().update(deadline_at=F("deadline_at") - step)
        scope.schedules().update(fire_at=F("fire_at") - step)


def sync_schedules() -> schedule_sync.SyncReport:
    """Write the schedules the code declares to the test database, as a worker does when it starts.

    Without it a test's database has no schedules (the tests of other workflows see none);
    after it, :func:`pass_time` fires their ticks.
    """
    return schedule_sync.sync(declared(), database())
