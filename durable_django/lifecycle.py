"""A run's life events outside the generator: finishing, cancelling, restarting, waking a parent.

Each runs inside the caller's transaction with the run's row locked.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import F
from django.db.models.functions import Now

from . import dispatch, observe
from .models import HistoryEntry, Signal, WorkflowRun, WorkItem

__all__ = ["child_workflow_id", "continue_as_new", "finish", "request_cancel"]

Status = WorkflowRun.Status


def finish(
    using: str,
    run: WorkflowRun,
    status: str,
    *,
    result_json: str | None = None,
    error_json: str | None = None,
    **fields: Any,
) -> None:
    """Give ``run`` a final status, drop its pending work and tell its parent; or block it.

    A blocked run keeps its work items and a pending cancel: it is resumable.
    """
    fields.update(status=status, result_json=result_json, error_json=error_json, updated_at=Now())
    observe.run_ended(using, run.pk, run.workflow_id, run.workflow_name, status, error_json)
    if status == Status.BLOCKED:
        WorkflowRun.objects.using(using).filter(pk=run.pk).update(**fields)
        return
    WorkflowRun.objects.using(using).filter(pk=run.pk).update(cancel_requested=False, finished_at=Now(), **fields)
    WorkItem.objects.using(using).filter(run_id=run.pk).delete()
    notify_parent(using, run)


def notify_parent(using: str, run: WorkflowRun) -> None:
    """Wake the parent so it pulls this child's outcome (the child never locks its parent)."""
    if run.parent_id is None:
        return
    dispatch.wake(using, run.parent_id)


def request_cancel(using: str, run_id: uuid.UUID) -> bool:
    """Ask a live run to cancel at its current yield; False if it already finished."""
    requested = (
        WorkflowRun.objects.using(using)
        .filter(pk=run_id, status__in=WorkflowRun.LIVE)
        .update(cancel_requested=True, updated_at=Now())
    )
    if requested:
        dispatch.wake(using, run_id)
    return bool(requested)


def continue_as_new(using: str, run: WorkflowRun, args_json: str, state_json: str | None) -> None:
    """Start the run over with new arguments; signals it has not consumed stay in its inbox."""
    HistoryEntry.objects.using(using).filter(run_id=run.pk).delete()
    Signal.objects.using(using).filter(run_id=run.pk, consumed_seq__isnull=False).delete()
    WorkItem.objects.using(using).filter(run_id=run.pk).delete()
    fields: dict[str, Any] = {} if state_json is None else {"state_json": state_json}
    WorkflowRun.objects.using(using).filter(pk=run.pk).update(
        input_json=args_json,
        next_seq=0,
        generation=F("generation") + 1,
        status=Status.RUNNING,
        updated_at=Now(),
        **fields,
    )
    dispatch.wake(using, run.pk)


def child_workflow_id(parent: WorkflowRun, seq: int) -> str:
    suffix = f"/{seq}" if parent.generation == 0 else f"/{parent.generation}.{seq}"
    candidate = parent.workflow_id + suffix
    return candidate if len(candidate) <= 255 else f"child-{uuid.uuid5(uuid.NAMESPACE_URL, candidate).hex}{suffix}"
