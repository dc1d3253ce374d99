"""Database state: runs, their step history, and the work items workers claim.

The database is the only source of truth. A Celery message carries a work item id and
nothing else; losing or duplicating one can delay work, never lose or repeat it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models.functions import Now

from . import codec

__all__ = ["StepRecord", "WorkItem", "WorkflowRun"]


class WorkflowRun(models.Model):
    """One execution of a workflow."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        WAITING = "waiting", "waiting"
        COMPLETED = "completed", "completed"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"
        BLOCKED = "blocked", "blocked"

    FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow_id = models.CharField(max_length=255, unique=True)
    workflow_name = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    input_json = models.TextField()
    result_json = models.TextField(null=True, blank=True)
    error_json = models.TextField(null=True, blank=True)
    #: Number of history entries; the next request gets this sequence number.
    next_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    updated_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "workflow run"

    def __str__(self) -> str:
        return f"{self.workflow_name} {self.workflow_id} ({self.status})"

    @property
    def result(self) -> Any:
        """The workflow's return value once completed, else None."""
        return None if self.result_json is None else codec.decode(self.result_json)

    @property
    def error(self) -> dict[str, str] | None:
        """``{"type", "message", "traceback"}`` for a failed or blocked run, else None."""
        return None if self.error_json is None else codec.decode(self.error_json)

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class StepRecord(models.Model):
    """One entry of a run's history: a request the workflow yielded and its outcome."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "scheduled"
        COMPLETED = "completed", "completed"
        FAILED = "failed", "failed"

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, default="step")
    name = models.CharField(max_length=255)
    args_json = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    result_json = models.TextField(null=True, blank=True)
    #: The last attempt's error; the final one once the step failed.
    error_json = models.TextField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    scheduled_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="durable_step_run_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.name} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.run_id, self.seq)


def idempotency_key(run_id: uuid.UUID | str, seq: int) -> str:
    """Stable per run and step, whatever the attempt or the worker."""
    run_hex = run_id.hex if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id)).hex
    return f"{run_hex}-{seq}"


class WorkItem(models.Model):
    """The outbox: something a worker must do, claimed with a lease and a fencing token.

    Ready when ``lease_expires_at`` is null and ``available_at`` has passed; claimed while
    the lease runs; claimable again once it expires. ``token`` grows with every claim, and
    every write a worker makes about the item checks it, so a zombie's late write is refused.
    Done items are deleted.
    """

    class Kind(models.TextChoices):
        ADVANCE = "advance", "advance the workflow"
        STEP = "step", "run a step"

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

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at"], name="durable_item_ready", condition=models.Q(lease_expires_at__isnull=True)
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="durable_item_leased",
                condition=models.Q(lease_expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} of {self.run_id}"
