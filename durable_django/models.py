"""Database state: runs, their history, their signals, and the work items workers claim.

The database is the only source of truth. A Celery message carries a work item id and
nothing else; losing or duplicating one can delay work, never lose or repeat it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from .core import codec
from .core.requests import Kind as RequestKind
from .core.schedules import Overlap as ScheduleOverlap
from .store.querysets import HistoryQuerySet, RunQuerySet, ScheduleQuerySet, SignalQuerySet, WorkItemQuerySet

__all__ = ["HistoryEntry", "Schedule", "Signal", "WorkItem", "WorkflowRun", "idempotency_key"]


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
    #: The input the run was started with, kept once it continues as new (``input_json`` is then
    #: the current generation's), so starting its ``workflow_id`` again compares with it.
    initial_input_json = models.TextField(null=True, blank=True)
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

    def query(self, name: str | None = None, /, *args: Any) -> Any:
        """Without a name: the generator's local variables as of now, by replay with no side effects.

        With a name: the answer of the workflow's named query (``@wf.query(name)``) given ``args``.
        """
        from . import runs

        return runs.query(self, name, *args)

    def resume(self) -> None:
        """Resume a blocked run once the code is fixed; it replays its history from the start."""
        from . import runs

        runs.resume(self)


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
    #: What the step's last ``step_context().heartbeat(details)`` reported; the next attempt reads it.
    heartbeat_json = models.TextField(null=True, blank=True)
    child = models.ForeignKey(WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = HistoryQuerySet.as_manager()

    class Meta:
        ordering = ["run", "seq"]
        verbose_name = _("history entry")
        verbose_name_plural = _("history entries")
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="durable_history_run_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.name} ({self.status})"


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
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} of {self.run_id}"


class Schedule(models.Model):
    """A workflow started at every tick of a cron expression or an interval, by the workers' sweepers.

    ``next_tick_at`` is the next tick itself (it names the run); ``fire_at`` is when the
    database's clock makes it due (the tick plus its jitter). Only a sweeper holding the
    row's lock moves them, in the transaction that starts the tick's run.
    """

    class Overlap(models.TextChoices):
        """The core's ``Overlap`` values (``durable_django.core.schedules``)."""

        SKIP = ScheduleOverlap.SKIP.value, _("skip the tick")
        ALLOW = ScheduleOverlap.ALLOW.value, _("start anyway")
        CANCEL_PREVIOUS = ScheduleOverlap.CANCEL_PREVIOUS.value, _("cancel the previous run")

    class Source(models.TextChoices):
        CODE = "code", _("declared in code")
        ADMIN = "admin", _("made in the admin")

    name = models.CharField(max_length=200, unique=True)
    workflow_name = models.CharField(max_length=255)
    #: The workflow's arguments, ``{"args": [...], "kwargs": {...}}``.
    args_json = models.TextField(default='{"args":[],"kwargs":{}}')
    cron = models.CharField(max_length=255, blank=True, default="")
    every = models.DurationField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.SKIP)
    catch_up = models.PositiveIntegerField(default=1)
    jitter = models.DurationField(default=timedelta(0))
    paused = models.BooleanField(default=False)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)
    #: Declared in code once, no longer: it stops firing until it is declared again or deleted.
    missing_from_code = models.BooleanField(default=False)
    next_tick_at = models.DateTimeField(null=True, blank=True)
    fire_at = models.DateTimeField(null=True, blank=True)
    last_tick_at = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: What the last tick did besides starting a run: a skip, a cancel, dropped ticks, a refusal.
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        permissions = [
            ("pause_schedule", _("Can pause and resume schedules")),
            ("trigger_schedule", _("Can start a schedule's workflow now")),
        ]
        indexes = [
            models.Index(
                fields=["fire_at"],
                name="durable_schedule_due",
                condition=models.Q(paused=False, missing_from_code=False),
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def arguments(self) -> tuple[list[Any], dict[str, Any]]:
        """The workflow's ``(args, kwargs)``."""
        data = codec.decode(self.args_json)
        return data["args"], data["kwargs"]

    def pause(self) -> None:
        """Stop firing until :meth:`resume`; the ticks in between are not caught up."""
        from . import schedules

        schedules.pause(self)

    def resume(self) -> None:
        """Fire again from the next tick after now."""
        from . import schedules

        schedules.resume(self)

    def trigger(self) -> WorkflowRun | None:
        """Start the workflow now, outside the ticks, as the overlap policy allows; None if it skipped."""
        from . import schedules

        return schedules.trigger(self)
