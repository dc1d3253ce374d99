"""What a run did: its history entries, the attempts that were lost, and the signals sent to it."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from ..core.requests import Kind as RequestKind
from ..store.querysets import HistoryQuerySet, SignalQuerySet
from .runs import WorkflowRun


class HistoryEntry(models.Model):
    """One position of a run's history: a request the workflow yielded and its outcome."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    class Kind(models.TextChoices):
        """The request recorded here; the values are the core's ``Kind`` (``durable_django.core.requests``)."""

        STEP = RequestKind.STEP.value, _("step")
        SLEEP = RequestKind.SLEEP.value, _("sleep")
        SIGNAL = RequestKind.SIGNAL.value, _("wait for a signal")
        CHILD = RequestKind.CHILD.value, _("child workflow")
        STATE = RequestKind.STATE.value, _("set state")
        PATCHED = RequestKind.PATCHED.value, _("patch marker")
        ALL_OF = RequestKind.ALL_OF.value, _("all of")
        ANY_OF = RequestKind.ANY_OF.value, _("any of")
        UPDATE = RequestKind.UPDATE.value, _("wait for an update")
        REPLY = RequestKind.REPLY.value, _("reply to an update")

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="history")
    seq = models.PositiveIntegerField()
    #: Position of the ``all_of``/``any_of`` entry this leaf belongs to.
    group_seq = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=255, blank=True)
    args_json = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    result_json = models.TextField(null=True, blank=True)
    #: The last attempt's error; the final one once the step failed.
    error_json = models.TextField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    scheduled_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: When a sleep ends, or a signal wait times out.
    fire_at = models.DateTimeField(null=True, blank=True)
    #: What the step's last ``step_context().heartbeat(details)`` reported; the next attempt reads it.
    heartbeat_json = models.TextField(null=True, blank=True)
    child = models.ForeignKey(WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["run_id", "seq"]  # by the column: "run" would order by the run's ordering, a join
        verbose_name = _("history entry")
        verbose_name_plural = _("history entries")
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="durable_history_run_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.name} ({self.status})"


class LostAttempt(models.Model):
    """An attempt of a step that never reported: its worker died or hung, and its lease ran out.

    Written when another attempt claims the step, so a killed attempt stays visible in the
    timeline after the step succeeds (its error, if any, is overwritten by then).
    """

    entry = models.ForeignKey(HistoryEntry, on_delete=models.CASCADE, related_name="lost_attempts")
    attempt = models.PositiveIntegerField()
    #: ``host:pid`` of the process that held the lease.
    owner = models.CharField(max_length=255, blank=True, default="")
    #: When the next attempt took the step over.
    detected_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name = _("lost attempt")
        verbose_name_plural = _("lost attempts")

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.entry}"


def idempotency_key(run_id: uuid.UUID | str, generation: int, seq: int) -> str:
    """Stable per run, generation and position, whatever the attempt or the worker."""
    run_hex = run_id.hex if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id)).hex
    return f"{run_hex}-{seq}" if generation == 0 else f"{run_hex}-{generation}-{seq}"


class Signal(models.Model):
    """A message sent to a run; consumed by one ``wait_signal`` of the same name, oldest first."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="signals")
    name = models.CharField(max_length=255)
    payload_json = models.TextField()
    created_at = models.DateTimeField(db_default=Now())
    #: The history position that consumed it; null while it waits in the inbox.
    consumed_seq = models.PositiveIntegerField(null=True, blank=True)

    objects = SignalQuerySet.as_manager()

    class Meta:
        verbose_name = _("signal")
        verbose_name_plural = _("signals")
        indexes = [
            models.Index(
                fields=["run", "name", "id"], name="durable_signal_inbox", condition=models.Q(consumed_seq__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"signal {self.name} to {self.run_id}"
