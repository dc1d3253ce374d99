"""Helpers for testing workflows: move time forward without waiting for it.

Timers are database rows judged by the database's clock, so instead of changing the
clock, :func:`advance_time` brings every pending timer closer by the same amount.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F

from . import runner, sweeper
from .leases import claimable, database
from .models import HistoryEntry, WorkItem

__all__ = ["advance_time", "run_until_idle"]


def advance_time(delta: timedelta) -> int:
    """Act as if ``delta`` passed for every pending timer; wake the ones now due.

    Returns how many work items were published. Timers still never fire before their
    (moved) fire time, so "not early" stays checkable.
    """
    using = database()
    with transaction.atomic(using=using):
        WorkItem.objects.using(using).filter(kind=WorkItem.Kind.TIMER).update(
            available_at=F("available_at") - delta, dispatched_at=None
        )
        HistoryEntry.objects.using(using).filter(status=HistoryEntry.Status.SCHEDULED, fire_at__isnull=False).update(
            fire_at=F("fire_at") - delta
        )
    return sweeper.sweep()


def run_until_idle(*, max_items: int = 10_000) -> int:
    """Work every due work item in this process, as a worker would, until none is left due.

    Needs no Celery: steps, advances and due timers run right here, inline, in the
    calling thread (also inside a ``TestCase``'s transaction). Timers and retries that
    are not due yet stay pending; move them with :func:`advance_time`. Returns how many
    work items were taken.
    """
    using = database()
    worked = 0
    while worked < max_items:
        due = list(
            WorkItem.objects.using(using)
            .filter(claimable())
            .order_by("available_at", "pk")
            .values_list("pk", flat=True)
        )
        if not due:
            return worked
        for item_id in due[: max_items - worked]:
            runner.work(item_id)
            worked += 1
    return worked
