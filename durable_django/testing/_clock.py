"""Time in tests: timers and schedules are database rows judged by the database's clock.

Instead of changing a clock, these bring pending timers (and retry waits) and the next
tick of every schedule closer by the time that is meant to pass. Nothing fires before its
moved time, so "never early" stays checkable. Code that reads the clock itself (a step
calling ``timezone.now()``) still sees the real time, and a tick's run keeps the tick's own
instant in its ``workflow_id``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from ..core.schedules import declared
from ..models import HistoryEntry, Schedule, WorkItem
from ..store import schedule_sync, schedules
from ..store.leases import database
from ..worker import sweeper
from ._inline import run_until_idle

__all__ = ["advance_time", "pass_time", "sync_schedules"]

#: Rounds of "fire the next timer, run until idle" one pass_time() takes at most.
_MAX_ROUNDS = 1000
#: Time moves this much past a timer's due time, so it is due by any database's clock
#: (SQLite's ``Now()`` counts milliseconds).
_TICK = timedelta(milliseconds=1)


def advance_time(delta: timedelta) -> int:
    """Act as if ``delta`` passed for every pending timer and schedule; publish the timers now due.

    For tests with a real worker, which then fires them (its sweeper fires the schedules
    now due, each as its ``catch_up`` allows). Returns how many work items were published.
    In-process tests use :func:`pass_time` instead.
    """
    using = database()
    with transaction.atomic(using=using):
        WorkItem.objects.using(using).of_kind(WorkItem.Kind.TIMER).update(
            available_at=F("available_at") - delta, dispatched_at=None
        )
        HistoryEntry.objects.using(using).timed().update(fire_at=F("fire_at") - delta)
        Schedule.objects.using(using).update(fire_at=F("fire_at") - delta)
    return sweeper.sweep()


def pass_time(delta: timedelta, *, max_items: int = 10_000) -> int:
    """Let ``delta`` pass: fire every timer, retry and schedule tick due by then, in order, working runs in between.

    Time moves from one due timer or tick to the next, so a timer set while this runs (a
    second sleep after the first one, say) fires too if it falls within ``delta``, and an
    hourly schedule fires each hour's run in turn. Schedules declared in code take part once
    :func:`sync_schedules` wrote them to the test database. Needs no Celery, and works
    inside a ``TestCase``. Returns how many work items were taken.
    """
    if delta < timedelta(0):
        raise ValueError(f"time only passes forward; {delta} is negative.")
    using = database()
    worked = 0
    remaining = delta
    for _ in range(_MAX_ROUNDS):
        schedules.sweep(using)
        worked += run_until_idle(max_items=max_items - worked)
        if remaining <= timedelta(0) or worked >= max_items:
            break
        upcoming = _upcoming(using)
        if upcoming is None:
            if WorkItem.objects.using(using).claimable().exists() or Schedule.objects.using(using).due().exists():
                continue  # a retry or a tick came due by itself since the last look: work it first
            break
        step = min(max(upcoming[0] - upcoming[1], timedelta(0)) + _TICK, remaining)
        _shift(using, step)
        remaining -= step
    return worked


def _upcoming(using: str) -> tuple[datetime, datetime] | None:
    """The next time something waits for, and the database's now: the earliest timer or schedule tick."""
    found: list[Any] = [
        WorkItem.objects.using(using)
        .unleased()
        .filter(available_at__gt=Now())
        .annotate(now=Now())
        .order_by("available_at")
        .values_list("available_at", "now")
        .first(),
        Schedule.objects.using(using)
        .active()
        .filter(fire_at__gt=Now())
        .annotate(now=Now())
        .order_by("fire_at")
        .values_list("fire_at", "now")
        .first(),
    ]
    upcoming: tuple[datetime, datetime] | None = min((when for when in found if when is not None), default=None)
    return upcoming


def _shift(using: str, step: timedelta) -> None:
    """Everything that waits for a time gets ``step`` closer to it."""
    with transaction.atomic(using=using):
        WorkItem.objects.using(using).unleased().update(available_at=F("available_at") - step)
        HistoryEntry.objects.using(using).timed().update(fire_at=F("fire_at") - step)
        Schedule.objects.using(using).update(fire_at=F("fire_at") - step)


def sync_schedules() -> schedule_sync.SyncReport:
    """Write the schedules the code declares to the test database, as a worker does when it starts.

    Without it a test's database has no schedules (the tests of other workflows see none);
    after it, :func:`pass_time` fires their ticks.
    """
    return schedule_sync.sync(declared(), database())
