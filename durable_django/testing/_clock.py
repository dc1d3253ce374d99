"""Time in tests: timers are database rows judged by the database's clock.

Instead of changing a clock, these bring pending timers (and retry waits) closer by the
time that is meant to pass. Nothing fires before its moved time, so "never early" stays
checkable. Code that reads the clock itself (a step calling ``timezone.now()``) still sees
the real time.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from ..models import HistoryEntry, WorkItem
from ..store.leases import database
from ..worker import sweeper
from ._inline import run_until_idle

__all__ = ["advance_time", "pass_time"]

#: Rounds of "fire the next timer, run until idle" one pass_time() takes at most.
_MAX_ROUNDS = 1000
#: Time moves this much past a timer's due time, so it is due by any database's clock
#: (SQLite's ``Now()`` counts milliseconds).
_TICK = timedelta(milliseconds=1)


def advance_time(delta: timedelta) -> int:
    """Act as if ``delta`` passed for every pending timer; publish the ones now due to the broker.

    For tests with a real worker, which then fires them. Returns how many work items were
    published. In-process tests use :func:`pass_time` instead.
    """
    using = database()
    with transaction.atomic(using=using):
        WorkItem.objects.using(using).of_kind(WorkItem.Kind.TIMER).update(
            available_at=F("available_at") - delta, dispatched_at=None
        )
        HistoryEntry.objects.using(using).timed().update(fire_at=F("fire_at") - delta)
    return sweeper.sweep()


def pass_time(delta: timedelta, *, max_items: int = 10_000) -> int:
    """Let ``delta`` pass: fire every timer and retry due by then, in order, working runs in between.

    Time moves from one due timer to the next, so a timer set while this runs (a second
    sleep after the first one, say) fires too if it falls within ``delta``. Needs no
    Celery, and works inside a ``TestCase``. Returns how many work items were taken.
    """
    if delta < timedelta(0):
        raise ValueError(f"time only passes forward; {delta} is negative.")
    using = database()
    worked = 0
    remaining = delta
    for _ in range(_MAX_ROUNDS):
        worked += run_until_idle(max_items=max_items - worked)
        if remaining <= timedelta(0) or worked >= max_items:
            break
        upcoming = (
            WorkItem.objects.using(using)
            .unleased()
            .filter(available_at__gt=Now())
            .annotate(now=Now())
            .order_by("available_at")
            .values_list("available_at", "now")
            .first()
        )
        if upcoming is None:
            if WorkItem.objects.using(using).claimable().exists():
                continue  # a retry came due by itself since the last look: work it first
            break
        step = min(max(upcoming[0] - upcoming[1], timedelta(0)) + _TICK, remaining)
        _shift(using, step)
        remaining -= step
    return worked


def _shift(using: str, step: timedelta) -> None:
    """Everything that waits for a time gets ``step`` closer to it."""
    with transaction.atomic(using=using):
        WorkItem.objects.using(using).unleased().update(available_at=F("available_at") - step)
        HistoryEntry.objects.using(using).timed().update(fire_at=F("fire_at") - step)
