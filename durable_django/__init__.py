"""Durable execution for Django: workflows are generators, steps commit with your data.

The public API is the set below; everything else is private. The package, from the inside out:

- ``core/``: the replay core, pure (no Django, no Celery): requests, the interpreter, the
  engine that decides, the registry, JSON values, retry policies, cron cadences.
- ``store/``: the database side: advancing a run under its lock, the transactions workers
  make, the one-statement fast path, the outbox, leases and their owners, the lock order.
- ``worker/``: the Celery shell: the step runner, the sweeper, signal wiring, connections.
- ``ops/``: what operators call: repair, replay checks, pruning, the console.
- The top level is what Django and Celery look for by name (``models``, ``tasks``, ``apps``,
  ``checks``, ``signals``, ``admin/``, ``management/``, ``migrations/``, ``testing/``), the
  public API's modules (``definitions``, ``run_options``, ``bulk``, ``runs``, ``updates``,
  ``queries``, ``schedules``, ``waiting``, ``task_backend/``), ``conf`` and ``exceptions``;
  beside them three small modules that must not import ``django.tasks`` (which Django 5.2
  lacks without the backport): ``task_names`` and ``task_hooks`` (what the admin and the
  workers need of task runs) and ``filesystem_transport`` (the embedded broker's kombu
  transport, named by URL in settings).
  ``tests/test_layers.py`` holds the arrows between them to this order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.context import StepContext, step_context
from .core.info import WorkflowInfo, now, uuid4, workflow_info
from .core.policy import RetryPolicy
from .core.requests import (
    UpdateRequest,
    all_of,
    any_of,
    continue_as_new,
    deprecate_patch,
    patched,
    reject,
    reply,
    set_state,
    sleep,
    sleep_until,
    wait_signal,
    wait_update,
)
from .definitions import RunArgs, StepDefinition, WorkflowDefinition, step, workflow
from .exceptions import (
    Cancelled,
    ChildFailed,
    DeadlineExceeded,
    DurableError,
    InvalidRequest,
    InvalidRunState,
    InvalidSchedule,
    InvalidWorkflowId,
    InvalidYield,
    LeaseLost,
    NonDeterminismError,
    PayloadTooLarge,
    QueryFailed,
    QueryNotDefined,
    RunFailed,
    RunFinished,
    RunNotFound,
    SerializationError,
    StepContextUnavailable,
    StepFailed,
    StepTimeout,
    UpdateRejected,
    UpdateTimeout,
    WaitTimeout,
    WorkerLost,
    WorkflowContextUnavailable,
    WorkflowDefinitionError,
    WorkflowIdConflict,
    WorkflowNotRegistered,
)
from .schedules import ScheduleDefinition, schedule

if TYPE_CHECKING:
    from .models import Schedule, WorkflowRun
    from .ops.repair import afork, aretry, fork, retry
    from .runs import acancel, aget_run, aquery, aresume, asignal, cancel, get_run, query, resume, signal
    from .updates import aupdate, update

__all__ = [
    "Cancelled",
    "ChildFailed",
    "DeadlineExceeded",
    "DurableError",
    "InvalidRequest",
    "InvalidRunState",
    "InvalidSchedule",
    "InvalidWorkflowId",
    "InvalidYield",
    "LeaseLost",
    "NonDeterminismError",
    "PayloadTooLarge",
    "QueryFailed",
    "QueryNotDefined",
    "RetryPolicy",
    "RunArgs",
    "RunFailed",
    "RunFinished",
    "RunNotFound",
    "Schedule",
    "ScheduleDefinition",
    "SerializationError",
    "StepContext",
    "StepContextUnavailable",
    "StepDefinition",
    "StepFailed",
    "StepTimeout",
    "UpdateRejected",
    "UpdateRequest",
    "UpdateTimeout",
    "WaitTimeout",
    "WorkerLost",
    "WorkflowContextUnavailable",
    "WorkflowDefinition",
    "WorkflowDefinitionError",
    "WorkflowIdConflict",
    "WorkflowInfo",
    "WorkflowNotRegistered",
    "WorkflowRun",
    "acancel",
    "afork",
    "aget_run",
    "all_of",
    "any_of",
    "aquery",
    "aresume",
    "aretry",
    "asignal",
    "aupdate",
    "cancel",
    "continue_as_new",
    "deprecate_patch",
    "fork",
    "get_run",
    "now",
    "patched",
    "query",
    "reject",
    "reply",
    "resume",
    "retry",
    "schedule",
    "set_state",
    "signal",
    "sleep",
    "sleep_until",
    "step",
    "step_context",
    "update",
    "uuid4",
    "wait_signal",
    "wait_update",
    "workflow",
    "workflow_info",
]

_NEED_MODELS = {
    "Schedule": "models",
    "WorkflowRun": "models",
    "acancel": "runs",
    "afork": "ops.repair",
    "aget_run": "runs",
    "aquery": "runs",
    "aresume": "runs",
    "aretry": "ops.repair",
    "asignal": "runs",
    "aupdate": "updates",
    "cancel": "runs",
    "fork": "ops.repair",
    "get_run": "runs",
    "query": "runs",
    "resume": "runs",
    "retry": "ops.repair",
    "signal": "runs",
    "update": "updates",
}


def __getattr__(name: str) -> Any:
    # These need the app registry, so they load on first use, not at import.
    module = _NEED_MODELS.get(name)
    if module is None:
        raise AttributeError(f"module 'durable_django' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
