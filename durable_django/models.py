"""Database state: runs, their history, their signals, and the work items workers claim.

The database is the only source of truth. A Celery message carries a work item id and
nothing else; losing or duplicating one can delay work, never lose or repeat it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models.functions import Cast, Now
from django.utils.translation import gettext_lazy as _

from .core import codec
from .core.requests import Kind as RequestKind
from .store.attributes import AttributesField
from .store.querysets import HistoryQuerySet, RunQuerySet, SignalQuerySet, WorkItemQuerySet

__all__ = ["HistoryEntry", "LostAttempt", "Signal", "WorkItem", "WorkflowRun", "idempotency_key"]


class WorkflowRun(models.Model):
    """One execution of a workflow, addressed by its unique ``workflow_id``."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        WAITING = "waiting", _("waiting")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        BLOCKED = "blocked", _("blocked")

    LIVE = (Status.PENDING, Status.RUNNING, Status.WAITING)
    FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow_id = models.CharField(max_length=255, unique=True)
    workflow_name = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    input_json = models.TextField()
    result_json = models.TextField(null=True, blank=True)
    error_json = models.TextField(null=True, blank=True)
    #: What the workflow last published with ``durable.set_state()``.
    state_json = models.TextField(null=True, blank=True)
    #: Number of history positions taken; the next request gets this sequence number.
    next_seq = models.PositiveIntegerField(default=0)
    #: How many times the run continued as new (each restart begins an empty history).
    generation = models.PositiveIntegerField(default=0)
    #: Set by ``cancel()``; the next advance raises ``Cancelled`` in the workflow and clears it.
    cancel_requested = models.BooleanField(default=False)
    #: When ``cancel()`` was first called; later calls change nothing.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    #: The parent's history position waiting for this child.
    parent_seq = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    updated_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)
    #: The caller's own keys, given with ``wf.using(attributes={...})``: ``filter(attributes__customer=42)``.
    attributes = AttributesField(default=dict, blank=True)
    #: The model instance the run is about (``wf.using(subject=order)``), by model label and primary
    #: key: a generic relation that needs no ``contenttypes`` and reads the same in every database.
    subject_type = models.CharField(max_length=100, blank=True, default="")
    subject_id = models.CharField(max_length=255, blank=True, default="")
    # The result and the state as JSON for filter() and the admin, computed by the database from
    # the text columns, which stay the source of truth: every writer (the fast path's raw SQL
    # included) writes text only, and replay reads the exact text it recorded.
    result_data = models.GeneratedField(
        expression=Cast("result_json", models.JSONField()), output_field=models.JSONField(), db_persist=True
    )
    state_data = models.GeneratedField(
        expression=Cast("state_json", models.JSONField()), output_field=models.JSONField(), db_persist=True
    )

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("workflow run")
        verbose_name_plural = _("workflow runs")
        # What an operator may do to runs in the admin, beyond viewing them.
        permissions = [
            ("cancel_workflowrun", _("Can cancel workflow runs")),
            ("retry_workflowrun", _("Can retry failed or blocked workflow runs")),
            ("signal_workflowrun", _("Can send signals to workflow runs")),
            ("fork_workflowrun", _("Can restart workflow runs from a chosen step")),
            ("export_unredacted_workflowrun", _("Can download workflow run history unredacted")),
        ]
        # The GIN index on attributes is PostgreSQL's own; migration 0003 creates it there.
        indexes = [
            models.Index(
                fields=["subject_type", "subject_id"],
                name="durable_run_subject",
                condition=~models.Q(subject_type=""),
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_name} {self.workflow_id} ({self.status})"

    @property
    def result(self) -> Any:
        """The workflow's return value once completed, else None."""
        return None if self.result_json is None else codec.decode(self.result_json)

    @property
    def error(self) -> dict[str, str] | None:
        """``{"type", "message", "traceback"}`` for a failed, cancelled or blocked run, else None."""
        return None if self.error_json is None else codec.decode(self.error_json)

    @property
    def state(self) -> Any:
        """The value last published with ``durable.set_state()``, without replaying anything."""
        return None if self.state_json is None else codec.decode(self.state_json)

    @property
    def subject(self) -> models.Model | None:
        """The instance given with ``wf.using(subject=...)``, loaded now; None if none was or it is gone."""
        if not self.subject_type:
            return None
        try:
            model = apps.get_model(self.subject_type)
        except LookupError:
            return None
        found: models.Model | None = model._default_manager.filter(pk=self.subject_id).first()
        return found

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def signal(self, name: str, payload: Any = None) -> None:
        """Send signal ``name`` with a JSON ``payload``; it commits with the caller's transaction."""
        from . import runs

        runs.signal(self, name, payload)

    def cancel(self) -> None:
        """Raise ``durable.Cancelled`` in the workflow at its current ``yield`` (after commit)."""
        from . import runs

        runs.cancel(self)

    def query(self) -> dict[str, Any]:
        """The generator's local variables as of now, by replaying history with no side effects."""
        from . import runs

        return runs.query(self)

    def resume(self) -> None:
        """Resume a blocked run once the code is fixed; it replays its history from the start."""
        from . import runs

        runs.resume(self)

    async def asignal(self, name: str, payload: Any = None) -> None:
        """:meth:`signal` for async code; it commits on its own."""
        from . import runs

        await runs.asignal(self, name, payload)

    async def acancel(self) -> None:
        """:meth:`cancel` for async code; it commits on its own."""
        from . import runs

        await runs.acancel(self)

    async def aquery(self) -> dict[str, Any]:
        """:meth:`query` for async code."""
        from . import runs

        return await runs.aquery(self)

    async def aresume(self) -> None:
        """:meth:`resume` for async code; it commits on its own."""
        from . import runs

        await runs.aresume(self)

    def wait(self, timeout: float | timedelta) -> Any:
        """Block until the run finishes: its result, or its error raised (``RunFailed``, ``Cancelled``).

        Raises ``WaitTimeout`` (a ``TimeoutError``) after ``timeout`` seconds (or a timedelta).
        Refreshes ``status``, ``result``, ``error`` and ``finished_at`` on this instance.
        """
        from . import runs

        return runs.wait(self, timeout)

    async def await_result(self, timeout: float | timedelta) -> Any:
        """:meth:`wait` for async code: ``await run.await_result(timeout=30)``."""
        from . import runs

        return await runs.await_result(self, timeout)


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
    child = models.ForeignKey(WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["run", "seq"]
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
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} of {self.run_id}"
