"""The outbox: work items workers claim with a lease and a fencing token."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from ..store.querysets import WorkItemQuerySet
from .runs import WorkflowRun


class WorkItem(models.Model):
    """The outbox: something a worker must do, claimed with a lease and a fencing token.

    Ready when ``lease_expires_at`` is null and ``available_at`` has passed; claimed while
    the lease runs; claimable again once it expires. ``token`` grows with every claim, and
    every write a worker makes about the item checks it, so a zombie's late write is refused.
    Done items are deleted.
    """

    class Kind(models.TextChoices):
        ADVANCE = "advance", _("advance the workflow")
        STEP = "step", _("run a step")
        TIMER = "timer", _("fire a timer")

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="work_items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    seq = models.PositiveIntegerField(null=True, blank=True)
    queue = models.CharField(max_length=255, blank=True, default="")
    available_at = models.DateTimeField(db_default=Now())
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_seconds = models.FloatField(default=60.0)
    token = models.PositiveIntegerField(default=0)
    #: ``host:pid`` of the process holding the lease, for operators and fault injection.
    owner = models.CharField(max_length=255, blank=True, default="")
    #: When the last wake-up message was meant to arrive; the sweeper resends stale ones.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    #: Times working this item raised an error that is not the connection's; the third blocks the run.
    failures = models.PositiveSmallIntegerField(db_default=0)

    objects = WorkItemQuerySet.as_manager()

    class Meta:
        verbose_name = _("work item")
        verbose_name_plural = _("work items")
        indexes = [
            models.Index(
                fields=["available_at"], name="durable_item_ready", condition=models.Q(lease_expires_at__isnull=True)
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="durable_item_leased",
                condition=models.Q(lease_expires_at__isnull=False),
            ),
            # Timers and retries no message was sent for: the sweeper's "what comes due next"
            # and "what is due now" read the first entries of this one, however many sleep.
            models.Index(
                fields=["available_at"],
                name="durable_item_unsent",
                condition=models.Q(lease_expires_at__isnull=True, dispatched_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} of {self.run_id}"
