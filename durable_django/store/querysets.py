"""The questions the store asks of its tables, named: ``WorkItem.objects.claimable()`` and so on.

Each model's default manager is built from one of these QuerySets, so every query reads as
what it asks (``WorkflowRun.objects.using(db).live()``) rather than as its filter. Time is
always the database's clock (:func:`db_now_plus`), never a worker's.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.expressions import CombinedExpression

from .clock import Now

if TYPE_CHECKING:  # the models import this module; the type checker alone needs their names
    from ..models import HistoryEntry, Schedule, Signal, Update, WorkflowRun, WorkItem  # noqa: F401

__all__ = [
    "HistoryQuerySet",
    "RunQuerySet",
    "ScheduleQuerySet",
    "SignalQuerySet",
    "UpdateQuerySet",
    "WorkItemQuerySet",
    "db_now_plus",
]


def db_now_plus(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    """The database's clock plus ``seconds``."""
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


class RunQuerySet(models.QuerySet["WorkflowRun"]):
    def live(self) -> RunQuerySet:
        """Runs that may still advance: pending, running or waiting."""
        return self.filter(status__in=self.model.LIVE)

    def finished(self) -> RunQuerySet:
        """Completed, failed or cancelled runs."""
        return self.filter(status__in=self.model.FINISHED)

    def locked(self, run_id: uuid.UUID, *fields: str, skip_locked: bool = False) -> RunQuerySet:
        """The run, its row locked until the transaction ends (``FOR NO KEY UPDATE``): one writer at a time.

        With ``skip_locked``, a row another transaction holds comes back as no row at all.
        """
        locking = self.select_for_update(no_key=True, skip_locked=skip_locked).filter(pk=run_id)
        return locking.only(*fields) if fields else locking

    def with_id(self, workflow_id: str) -> RunQuerySet:
        return self.filter(workflow_id=workflow_id)

    def children_of(self, run_id: uuid.UUID) -> RunQuerySet:
        return self.filter(parent_id=run_id)

    def for_subject(self, instance: models.Model) -> RunQuerySet:
        """Runs started with ``wf.using(subject=instance)``, newest first."""
        return self.filter(subject_type=instance._meta.label_lower, subject_id=str(instance.pk))


class HistoryQuerySet(models.QuerySet["HistoryEntry"]):
    def of(self, run_id: uuid.UUID) -> HistoryQuerySet:
        return self.filter(run_id=run_id)

    def at(self, run_id: uuid.UUID, seq: int) -> HistoryQuerySet:
        """The entry at position ``seq`` of the run's history."""
        return self.filter(run_id=run_id, seq=seq)

    def positions(self) -> HistoryQuerySet:
        """Entries the workflow yielded itself, not the leaves inside an ``all_of``/``any_of``."""
        return self.filter(group_seq__isnull=True)

    def pending(self) -> HistoryQuerySet:
        return self.filter(status=self.model.Status.SCHEDULED)

    def timed(self) -> HistoryQuerySet:
        """Pending entries that end at a time: sleeps and signal waits with a timeout."""
        return self.pending().filter(fire_at__isnull=False)


class SignalQuerySet(models.QuerySet["Signal"]):
    def of(self, run_id: uuid.UUID) -> SignalQuerySet:
        return self.filter(run_id=run_id)

    def inbox(self, run_id: uuid.UUID, name: str | None = None) -> SignalQuerySet:
        """Signals no wait has taken yet, oldest first (of one ``name``, if given)."""
        unread = self.filter(run_id=run_id, consumed_seq__isnull=True).order_by("id")
        return unread if name is None else unread.filter(name=name)

    def consumed(self) -> SignalQuerySet:
        return self.filter(consumed_seq__isnull=False)


class UpdateQuerySet(models.QuerySet["Update"]):
    def of(self, run_id: uuid.UUID) -> UpdateQuerySet:
        return self.filter(run_id=run_id)

    def inbox(self, run_id: uuid.UUID, name: str) -> UpdateQuerySet:
        """Updates ``name`` no wait has taken yet, oldest first."""
        return self.filter(run_id=run_id, name=name, consumed_seq__isnull=True).order_by("id")

    def unanswered(self) -> UpdateQuerySet:
        return self.filter(answered_at__isnull=True)

    def taken(self) -> UpdateQuerySet:
        return self.filter(consumed_seq__isnull=False)


class WorkItemQuerySet(models.QuerySet["WorkItem"]):
    def of(self, run_id: uuid.UUID) -> WorkItemQuerySet:
        return self.filter(run_id=run_id)

    def ready(self) -> WorkItemQuerySet:
        """Due and unleased: any worker may claim them."""
        return self.filter(lease_expires_at__isnull=True, available_at__lte=Now())

    def expired(self) -> WorkItemQuerySet:
        """Leased by a worker whose lease ran out: presumed dead, claimable again."""
        return self.filter(lease_expires_at__lt=Now())

    def claimable(self) -> WorkItemQuerySet:
        """:meth:`ready` or :meth:`expired`."""
        return self.filter(claimable())

    def unleased(self) -> WorkItemQuerySet:
        return self.filter(lease_expires_at__isnull=True)

    def leased(self) -> WorkItemQuerySet:
        """Held by a worker whose lease still runs."""
        return self.filter(lease_expires_at__gt=Now())

    def held(self, item_id: int, token: int) -> WorkItemQuerySet:
        """The item, only while ``token`` is still its fencing token (no later claim happened)."""
        return self.filter(pk=item_id, token=token)

    def of_kind(self, kind: str) -> WorkItemQuerySet:
        return self.filter(kind=kind)


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def active(self) -> ScheduleQuerySet:
        """Not paused, and still declared in code if code declared them."""
        return self.filter(paused=False, missing_from_code=False)

    def due(self) -> ScheduleQuerySet:
        """Active schedules whose next tick (plus its jitter) has come, by the database's clock.

        Also those with no next tick yet (a row written with the ORM): a sweep counts it.
        """
        return self.active().filter(Q(fire_at__lte=Now()) | Q(fire_at__isnull=True))


def claimable() -> Q:
    """Due and unleased, or leased by someone whose lease ran out."""
    return Q(lease_expires_at__isnull=True, available_at__lte=Now()) | Q(lease_expires_at__lt=Now())
