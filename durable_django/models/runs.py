"""A workflow run: one execution of a workflow, addressed by its ``workflow_id``."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models.functions import Cast, Now
from django.utils.translation import gettext_lazy as _

from ..core import codec
from ..store.attributes import AttributesField
from ..store.querysets import RunQuerySet


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
    #: When the run is cancelled with ``DeadlineExceeded`` (``timeout=``); a child's is never later than its parent's.
    deadline_at = models.DateTimeField(null=True, blank=True)
    #: The run's cancel came from its deadline: ``Cancelled`` is raised as ``DeadlineExceeded``.
    deadline_exceeded = models.BooleanField(db_default=False)
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
        # The GIN index on attributes is PostgreSQL's own; migration 0005 creates it there.
        indexes = [
            models.Index(
                fields=["subject_type", "subject_id"],
                name="durable_run_subject",
                condition=~models.Q(subject_type=""),
            ),
            # Finished runs, oldest first, for retention (``DURABLE_RETENTION``): live runs are not in it.
            models.Index(
                fields=["finished_at"], name="durable_run_finished", condition=models.Q(finished_at__isnull=False)
            ),
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
        found = self._subject_query()
        return None if found is None else found.first()

    async def aget_subject(self) -> models.Model | None:
        """:attr:`subject` for async code (a property cannot be awaited)."""
        found = self._subject_query()
        return None if found is None else await found.afirst()

    def _subject_query(self) -> models.QuerySet[models.Model] | None:
        """The subject's row as a query, not yet run; None if no subject was given or its model is gone."""
        if not self.subject_type:
            return None
        try:
            model = apps.get_model(self.subject_type)
        except LookupError:
            return None
        rows: models.QuerySet[models.Model] = model._default_manager.filter(pk=self.subject_id)
        return rows

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def signal(self, name: str, payload: Any = None) -> None:
        """Send signal ``name`` with a JSON ``payload``; it commits with the caller's transaction."""
        from .. import runs

        runs.signal(self, name, payload)

    def cancel(self) -> None:
        """Raise ``durable.Cancelled`` in the workflow at its current ``yield`` (after commit)."""
        from .. import runs

        runs.cancel(self)

    def query(self, name: str | None = None, /, *args: Any) -> Any:
        """Without a name: the generator's local variables as of now, by replay with no side effects.

        With a name: the answer of the workflow's named query (``@wf.query(name)``) given ``args``.
        """
        from .. import runs

        return runs.query(self, name, *args)

    def update(
        self, name: str, payload: Any = None, *, timeout: float | timedelta = 30.0, update_id: str | None = None
    ) -> Any:
        """Send update ``name`` and return the workflow's reply; raises ``UpdateRejected`` or ``UpdateTimeout``."""
        from .. import updates

        return updates.update(self, name, payload, timeout=timeout, update_id=update_id)

    async def aupdate(
        self, name: str, payload: Any = None, *, timeout: float | timedelta = 30.0, update_id: str | None = None
    ) -> Any:
        """:meth:`update` for async code."""
        from .. import updates

        return await updates.aupdate(self, name, payload, timeout=timeout, update_id=update_id)

    def resume(self) -> None:
        """Resume a blocked run once the code is fixed; it replays its history from the start."""
        from .. import runs

        runs.resume(self)

    async def asignal(self, name: str, payload: Any = None) -> None:
        """:meth:`signal` for async code; it commits on its own."""
        from .. import runs

        await runs.asignal(self, name, payload)

    async def acancel(self) -> None:
        """:meth:`cancel` for async code; it commits on its own."""
        from .. import runs

        await runs.acancel(self)

    async def aquery(self, name: str | None = None, /, *args: Any) -> Any:
        """:meth:`query` for async code."""
        from .. import runs

        return await runs.aquery(self, name, *args)

    async def aresume(self) -> None:
        """:meth:`resume` for async code; it commits on its own."""
        from .. import runs

        await runs.aresume(self)

    def wait(self, timeout: float | timedelta) -> Any:
        """Block until the run finishes: its result, or its error raised (``RunFailed``, ``Cancelled``).

        Raises ``WaitTimeout`` (a ``TimeoutError``) after ``timeout`` seconds (or a timedelta).
        Refreshes ``status``, ``result``, ``error`` and ``finished_at`` on this instance.
        """
        from .. import runs

        return runs.wait(self, timeout)

    async def await_result(self, timeout: float | timedelta) -> Any:
        """:meth:`wait` for async code: ``await run.await_result(timeout=30)``."""
        from .. import runs

        return await runs.await_result(self, timeout)
