"""One program's runs beside a real worker: are they idle, and let time pass for them only.

A program's runs are the root run and its descendants, whose workflow ids all start with
the root's (children are ``<parent>/<position>``); roots are named so that none is a
prefix of another. Only this program's timers move, so programs run side by side, each
with its own clock.

The database is the only truth: work that is under way always has a work item that is
leased or due, until the transaction that does it commits what comes next. So "no item
of these runs is leased or due" means nothing will happen until an event or time does.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store.clock import Now
from durable_django.worker import sweeper

#: Time moves this much past a timer's due time, so it is due by the database's clock.
TICK = timedelta(milliseconds=1)


def _items(prefix: str) -> QuerySet[WorkItem]:
    return WorkItem.objects.filter(run__workflow_id__startswith=prefix)


def busy(prefix: str) -> bool:
    """Some run of the program has work leased or due now."""
    return _items(prefix).filter(Q(lease_expires_at__isnull=False) | Q(available_at__lte=Now())).exists()


def next_wait(prefix: str) -> timedelta | None:
    """How long until the program's next timer or retry is due (None: nothing waits for time)."""
    upcoming = (
        _items(prefix)
        .filter(lease_expires_at__isnull=True, available_at__gt=Now())
        .annotate(now=Now())
        .order_by("available_at")
        .values_list("available_at", "now")
        .first()
    )
    if upcoming is None:
        return None
    return max(upcoming[0] - upcoming[1], timedelta(0))


def shift(prefix: str, step: timedelta) -> None:
    """Everything of the program that waits for a time gets ``step`` closer to it; due items are published.

    Items come due in the order of their (moved) times, before work that was due already:
    the in-process driver uses that for ``late`` signals.
    """
    with transaction.atomic():  # work already due stays as it is: it comes after what time brings due
        _items(prefix).filter(lease_expires_at__isnull=True, available_at__gt=Now()).update(
            available_at=F("available_at") - step, dispatched_at=None
        )
        HistoryEntry.objects.filter(
            run__workflow_id__startswith=prefix, status=HistoryEntry.Status.SCHEDULED, fire_at__isnull=False
        ).update(fire_at=F("fire_at") - step)
        # A deadline is a time too: a child started later is capped by it, and continue-as-new re-arms it.
        WorkflowRun.objects.filter(workflow_id__startswith=prefix, deadline_at__isnull=False).update(
            deadline_at=F("deadline_at") - step
        )
    sweeper.sweep()


class Clock:
    """A ``time`` event in progress for one program: ``pass_time`` done one timer at a time.

    As ``durable_django.testing.pass_time`` does in-process: time moves to the next due
    timer, the worker works the program until it is idle, then on to the next one, so a
    timer set meanwhile fires too if it falls within the event's time.
    """

    def __init__(self, seconds: int) -> None:
        self.remaining = timedelta(seconds=seconds)

    def step(self, prefix: str) -> bool:
        """Move to the next timer (call only while the program is idle); False once the event is over."""
        if self.remaining <= timedelta(0):
            return False
        wait = next_wait(prefix)
        if wait is None:
            self.remaining = timedelta(0)
            return False
        step = min(wait + TICK, self.remaining)
        shift(prefix, step)
        self.remaining -= step
        return True
