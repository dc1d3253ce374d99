"""A task run as Django's ``TaskResult``: statuses, errors, attempts and the return value.

``READY``: enqueued, deferred (``run_after``), or waiting to retry. ``RUNNING``: a worker
holds the step's lease. ``SUCCESSFUL``: the run completed. ``FAILED``: the run failed, was
cancelled, or is blocked (its task's code could not be found; ``durable.resume()`` after a
fix). ``errors`` holds the error of the task's last failed attempt (what durable_django keeps),
or the run's own (a cancel, a lost worker). ``worker_ids`` has one entry per attempt (Django
counts attempts by it): the ``host:pid`` of the worker of each attempt that holds the lease
now or was lost (its worker died or hung), and ``"unrecorded"`` for attempts that reported
(their workers are not kept).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Subquery
from django.utils.module_loading import import_string

from ..core import codec
from ..core.requests import Kind, decode_arguments
from ..exceptions import WorkflowNotRegistered
from ..models import HistoryEntry, LostAttempt, WorkflowRun, WorkItem
from ..store.leases import database
from ..store.owners import Owner
from ..task_names import SEPARATOR, TASK_PREFIX, TaskName
from .compat import Task, TaskError, TaskResult, TaskResultDoesNotExist, TaskResultStatus

__all__ = ["load", "status_of", "task_for", "task_result"]

Status = WorkflowRun.Status
UNRECORDED = "unrecorded"


def status_of(run_status: str, leased: bool) -> TaskResultStatus:
    """Django's status for a task run: see the module."""
    if run_status == Status.COMPLETED:
        return TaskResultStatus.SUCCESSFUL
    if run_status in (Status.FAILED, Status.CANCELLED, Status.BLOCKED):
        return TaskResultStatus.FAILED
    return TaskResultStatus.RUNNING if leased else TaskResultStatus.READY


def _annotated(alias: str | None) -> Any:
    step = HistoryEntry.objects.filter(run=OuterRef("pk"), kind=Kind.STEP)
    lease = WorkItem.objects.leased().filter(run=OuterRef("pk"), kind=WorkItem.Kind.STEP)
    prefix = TASK_PREFIX if alias is None else f"{TASK_PREFIX}{alias}{SEPARATOR}"
    return (
        WorkflowRun.objects.using(database())
        .filter(workflow_name__startswith=prefix)
        .annotate(
            step_attempts=Subquery(step.values("attempts")[:1]),
            step_started_at=Subquery(step.values("started_at")[:1]),
            step_error_json=Subquery(step.values("error_json")[:1]),
            lease_owner=Subquery(lease.values("owner")[:1]),
            leased=Exists(lease),
        )
    )


def load(alias: str | None, result_id: str | uuid.UUID, task: Task[Any, Any] | None = None) -> TaskResult[Any, Any]:
    """The result of the task run whose ``workflow_id`` is ``result_id`` (or, a UUID, whose pk is)."""
    runs = _annotated(alias)
    run = runs.filter(pk=result_id).first() if isinstance(result_id, uuid.UUID) else None
    run = run or runs.filter(workflow_id=result_id).first()
    if run is None:
        raise TaskResultDoesNotExist(f"no task run has the id {result_id!r}")
    return task_result(run, task)


def task_for(name: TaskName) -> Task[Any, Any]:
    """The task a run's name points at, as it was enqueued (backend and queue from the name)."""
    try:
        task = import_string(name.module_path)
    except ImportError as error:
        raise WorkflowNotRegistered(
            f"no task {name.module_path!r} can be imported in this process ({error}); deploy its module "
            "to every worker, or keep the old task importable until its runs finish."
        ) from None
    if not isinstance(task, Task):
        raise WorkflowNotRegistered(f"{name.module_path!r} is a {type(task).__name__}, not a django.tasks task.")
    if (task.backend, task.queue_name) == (name.alias, name.queue):
        return task
    return replace(task, backend=name.alias, queue_name=name.queue)


def task_result(run: WorkflowRun, task: Task[Any, Any] | None = None) -> TaskResult[Any, Any]:
    """``run`` (from :func:`load`'s query) as Django's ``TaskResult``."""
    name = TaskName.parse(run.workflow_name)
    assert name is not None, run.workflow_name
    arguments = decode_arguments(run.input_json)[0]  # [args, kwargs, run_after]: see running.TaskWorkflow
    task = task or task_for(name)
    attempts: int = getattr(run, "step_attempts", None) or 0
    owner: str | None = getattr(run, "lease_owner", None)
    leased = bool(getattr(run, "leased", False))
    started_at: datetime | None = getattr(run, "step_started_at", None)
    worker_ids = [UNRECORDED] * attempts
    if attempts > 1:  # the lost ones' workers are on record (one query, only after a retry)
        lost = LostAttempt.objects.using(database()).filter(entry__run_id=run.pk, entry__seq=0)
        for attempt, lost_owner in lost.values_list("attempt", "owner"):
            if 1 <= attempt <= attempts:
                worker_ids[attempt - 1] = Owner.short(lost_owner)
    if worker_ids and leased and owner:
        worker_ids[-1] = Owner.short(owner)
    result: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=run.workflow_id,
        status=status_of(run.status, leased),
        enqueued_at=run.created_at if isinstance(run.created_at, datetime) else None,
        started_at=started_at,
        finished_at=run.finished_at,
        last_attempted_at=started_at,
        args=arguments[0],
        kwargs=arguments[1],
        backend=name.alias,
        errors=_errors(getattr(run, "step_error_json", None), run),
        worker_ids=worker_ids,
    )
    if run.status == Status.COMPLETED:
        object.__setattr__(result, "_return_value", run.result)
    return result


def _errors(step_error_json: str | None, run: WorkflowRun) -> list[TaskError]:
    error = codec.decode(step_error_json) if step_error_json else None
    if error is None and run.status != Status.COMPLETED:
        error = run.error
    if not error:
        return []
    return [TaskError(exception_class_path=error.get("type", ""), traceback=error.get("traceback", ""))]
