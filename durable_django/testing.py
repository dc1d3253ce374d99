"""Helpers for testing workflows: move time forward without waiting for it.

Timers are database rows judged by the database's clock, so instead of changing the
clock, :func:`advance_time` brings every pending timer closer by the same amount.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F

from . import sweeper
from .leases import database
from .models import HistoryEntry, WorkItem

__all__ = ["advance_time"]


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
