"""A run's life events outside the generator: finishing, cancelling, restarting, waking a parent.

Each runs inside the caller's transaction with the run's row locked.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from ..core.interpreter import ErrorInfo, error_info
from ..exceptions import WorkflowIdConflict
from ..models import HistoryEntry, Signal, WorkflowRun, WorkItem
from . import deadlines, observe, outbox, updates
from .clock import Now

__all__ = ["child_workflow_id", "continue_as_new", "create_child", "finish", "missing_code", "request_cancel"]

Status = WorkflowRun.Status


def missing_code(error: ErrorInfo) -> ErrorInfo:
    """A run blocked because code it needs is not deployed: the error says how it goes on."""
    return ErrorInfo(
        error.type,
        f"{error.message} Once a release that has it is deployed, run.resume() (or Retry in the admin) goes on.",
        error.traceback,
    )


def finish(
    using: str,
    run: WorkflowRun,
    status: str,
    *,
    result_json: str | None = None,
    error_json: str | None = None,
    **fields: Any,
) -> None:
    """Give ``run`` a final status, drop its pending work, cancel its live children and tell its parent; or block it.

    A blocked run keeps its work items, its children and a pending cancel: it is resumable.
    A finished run's live children have nobody to report to, so they are cancelled and run
    their own compensation (a cancelled or blocked parent's children included).
    """
    fields.update(status=status, result_json=result_json, error_json=error_json, updated_at=Now())
    observe.run_ended(using, run.pk, run.workflow_id, run.workflow_name, status, error_json)
    if status == Status.BLOCKED:
        WorkflowRun.objects.using(using).filter(pk=run.pk).update(**fields)
        return
    WorkflowRun.objects.using(using).filter(pk=run.pk).update(cancel_requested=False, finished_at=Now(), **fields)
    WorkItem.objects.using(using).of(run.pk).delete()
    for child_id in WorkflowRun.objects.using(using).children_of(run.pk).live().values_list("pk", flat=True):
        request_cancel(using, child_id)
    notify_parent(using, run)


def notify_parent(using: str, run: WorkflowRun) -> None:
    """Wake the parent so it pulls this child's outcome (the child never locks its parent)."""
    if run.parent_id is None:
        return
    outbox.wake(using, run.parent_id)


def request_cancel(using: str, run_id: uuid.UUID) -> bool:
    """Ask a live run to cancel at its current yield; False if it already finished.

    Only the first request counts: once delivered, a cancel is not raised again inside the
    workflow's compensation by an impatient second call.
    """
    live = WorkflowRun.objects.using(using).live().filter(pk=run_id)
    if live.filter(cancel_requested_at__isnull=True).update(
        cancel_requested=True, cancel_requested_at=Now(), updated_at=Now()
    ):
        outbox.wake(using, run_id)
        return True
    return live.exists()


def continue_as_new(using: str, run: WorkflowRun, args_json: str, state_json: str | None) -> None:
    """Start the run over with new arguments; signals and updates it has not taken stay in its inbox."""
    updates.reject_unanswered(using, run.pk, run.generation)
    HistoryEntry.objects.using(using).of(run.pk).delete()
    Signal.objects.using(using).of(run.pk).consumed().delete()
    WorkItem.objects.using(using).of(run.pk).delete()
    fields: dict[str, Any] = {} if state_json is None else {"state_json": state_json}
    runs = WorkflowRun.objects.using(using).filter(pk=run.pk)
    deadline_at, exceeded = runs.values_list("deadline_at", "deadline_exceeded").get()  # as fired, maybe just now
    if exceeded:  # continuing from the deadline's compensation: later generations have none, nor their children
        fields["deadline_at"] = None
    elif deadline_at is not None:  # the deadline spans every generation
        deadlines.arm(using, run.pk, deadline_at)
    runs.filter(initial_input_json__isnull=True).update(initial_input_json=F("input_json"))
    runs.update(
        input_json=args_json,
        next_seq=0,
        generation=F("generation") + 1,
        cancel_requested=False,  # a cancel delivered to this generation is not raised in the next
        cancel_requested_at=None,
        deadline_exceeded=False,  # nor its deadline, once passed: the next generation has none
        status=Status.RUNNING,
        updated_at=Now(),
        **fields,
    )
    outbox.wake(using, run.pk)


def child_workflow_id(using: str, parent: WorkflowRun, seq: int) -> str:
    """``<parent>/<seq>`` (``<parent>/<generation>.<seq>`` after a restart), unless a run holds it already.

    History links a child by its run, never by this id, so a taken id just gets a suffix.
    """
    suffix = f"/{seq}" if parent.generation == 0 else f"/{parent.generation}.{seq}"
    candidate = parent.workflow_id + suffix
    if len(candidate) > 255:
        candidate = f"child-{uuid.uuid5(uuid.NAMESPACE_URL, candidate).hex}{suffix}"
    if WorkflowRun.objects.using(using).with_id(candidate).exists():
        candidate = f"{candidate[:240]}-{uuid.uuid4().hex[:12]}"
    return candidate


def create_child(
    using: str,
    parent: WorkflowRun,
    seq: int,
    name: str,
    args_json: str,
    workflow_id: str | None,
    timeout_seconds: float | None = None,
) -> WorkflowRun | ErrorInfo:
    """The child run for the parent's position ``seq``, or the refusal when its chosen id is taken.

    A default id never collides (:func:`child_workflow_id`). A chosen one may: another run
    has it, or a sibling in the same ``all_of`` took it first. Joining that run instead
    would hand the parent a result it did not start, so the parent gets the conflict.

    The child's deadline is its own ``timeout_seconds`` from now, and never later than its parent's.
    """
    runs = WorkflowRun.objects.using(using)
    deadline_at = deadlines.child_deadline(using, parent, timeout_seconds)
    fields = {
        "workflow_name": name,
        "input_json": args_json,
        "parent_id": parent.pk,
        "parent_seq": seq,
        "deadline_at": deadline_at,
    }
    if workflow_id is None:
        return _armed(using, runs.create(workflow_id=child_workflow_id(using, parent, seq), **fields))
    try:
        with transaction.atomic(using=using):  # a savepoint: the unique id may refuse the row
            return _armed(using, runs.create(workflow_id=workflow_id, **fields))
    except IntegrityError:
        holder = runs.with_id(workflow_id).values_list("pk", flat=True).first()
        return error_info(
            WorkflowIdConflict(
                f"the child workflow_id {workflow_id!r} is already used by run {holder}; choose an id that names "
                "this child uniquely (such as f'invoice-{order_id}'), or leave it out for '<parent>/<position>'."
            )
        )


def _armed(using: str, run: WorkflowRun) -> WorkflowRun:
    if run.deadline_at is not None:
        deadlines.arm(using, run.pk, run.deadline_at)
    return run
