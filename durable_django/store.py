"""Every database transaction the engine makes, each one short.

Hot path, one commit per step: fence the work item, record the outcome, advance the
generator, and schedule and claim the next step, all in the same transaction.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, router, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from . import cache, dispatch, engine
from .conf import settings
from .definitions import WorkflowDefinition, decode_arguments, encode_arguments, resolve_workflow
from .exceptions import DurableError, WorkflowIdConflict, WorkflowNotRegistered
from .models import StepRecord, WorkflowRun, WorkItem
from .registry import step as lookup_step

__all__ = ["Claim", "claim", "record_failure", "record_success", "start"]

_HOST = socket.gethostname()


def lease_owner() -> str:
    """Who takes a lease: this process as ``host:pid`` (read at each claim: pool children fork)."""
    return f"{_HOST}:{os.getpid()}"


LIVE = (WorkflowRun.Status.PENDING, WorkflowRun.Status.RUNNING, WorkflowRun.Status.WAITING)


def db_now_plus(seconds: float) -> ExpressionWrapper:
    """The database's clock plus ``seconds``: leases and delays never trust a worker's clock."""
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


def claimable() -> Q:
    return Q(lease_expires_at__isnull=True, available_at__lte=Now()) | Q(lease_expires_at__lt=Now())


@dataclass(frozen=True, slots=True)
class Claim:
    """A step work item this process holds the lease on, with what it needs to run it."""

    item_id: int
    token: int
    run_id: uuid.UUID
    workflow_id: str
    seq: int
    step: str
    args_json: str
    attempt: int
    queue: str


def _database() -> str:
    return router.db_for_write(WorkflowRun)


def _check_workflow_id(workflow_id: Any) -> str:
    if workflow_id is None:
        return str(uuid.uuid4())
    if not isinstance(workflow_id, str):
        raise DurableError(f"workflow_id={workflow_id!r} must be a str, for example f'order-{{order.pk}}'.")
    if not workflow_id or len(workflow_id) > 255 or workflow_id != workflow_id.strip():
        raise DurableError(
            f"workflow_id={workflow_id!r} must be 1 to 255 characters with no leading or trailing spaces."
        )
    if any(ord(char) < 32 for char in workflow_id):
        raise DurableError(f"workflow_id={workflow_id!r} contains control characters; use printable text.")
    return workflow_id


def start(
    definition: WorkflowDefinition[Any], args: list[Any], kwargs: dict[str, Any], workflow_id: str | None
) -> WorkflowRun:
    """Create a run and its first work item in the caller's transaction (or a new one)."""
    input_json = encode_arguments(args, kwargs, f"workflow {definition.name!r}")
    workflow_id = _check_workflow_id(workflow_id)
    using = _database()
    try:
        with transaction.atomic(using=using):
            run = WorkflowRun.objects.using(using).create(
                workflow_id=workflow_id, workflow_name=definition.name, input_json=input_json
            )
            item = WorkItem.objects.using(using).create(run=run, kind=WorkItem.Kind.ADVANCE, dispatched_at=Now())
            dispatch.after_commit(item.pk, "", using=using)
    except IntegrityError:
        existing = WorkflowRun.objects.using(using).filter(workflow_id=workflow_id).first()
        if existing is None:
            raise
        run = existing
    if run.workflow_name != definition.name:
        raise WorkflowIdConflict(
            f"workflow_id {workflow_id!r} already belongs to a run of {run.workflow_name!r}, "
            f"not {definition.name!r}; use a workflow_id that names the workflow, such as 'checkout-42'."
        )
    return run


def claim(item_id: int) -> Claim | None:
    """Claim the item if it is claimable; an ``advance`` item is worked on right here.

    Returns the step to run next, or None when there is nothing for this process to do
    (the item is gone, leased by a live worker, not yet due, or fully handled).
    """
    using = _database()
    with transaction.atomic(using=using):
        row = (
            WorkItem.objects.using(using)
            .select_for_update(skip_locked=True)
            .filter(claimable(), pk=item_id)
            .values("token", "kind", "run_id", "seq", "queue", "lease_seconds")
            .first()
        )
        if row is None:
            return None
        if row["kind"] == WorkItem.Kind.ADVANCE:
            WorkItem.objects.using(using).filter(pk=item_id).delete()
            return _advance(using, row["run_id"], None, row["queue"])
        token = row["token"] + 1
        WorkItem.objects.using(using).filter(pk=item_id, token=row["token"]).update(
            token=token, lease_expires_at=db_now_plus(row["lease_seconds"]), owner=lease_owner()
        )
        records = StepRecord.objects.using(using).filter(run_id=row["run_id"], seq=row["seq"])
        records.update(attempts=F("attempts") + 1, started_at=Now())
        record = records.values("name", "args_json", "attempts", "run__workflow_id").get()
    return Claim(
        item_id=item_id,
        token=token,
        run_id=row["run_id"],
        workflow_id=record["run__workflow_id"],
        seq=row["seq"],
        step=record["name"],
        args_json=record["args_json"],
        attempt=record["attempts"],
        queue=row["queue"],
    )


def _fence(using: str, held: Claim) -> bool:
    """Delete the item if this process still holds its lease; False means a newer claim won."""
    return WorkItem.objects.using(using).filter(pk=held.item_id, token=held.token).delete()[0] == 1


def record_success(held: Claim, result_json: str, body: Any = None) -> Claim | None:
    """Record a step's result and advance the run, in one transaction.

    ``body``, when given, runs first inside the same transaction: that is an atomic step,
    and it must return the result's JSON (``result_json`` is then ignored).
    """
    using = _database()
    with transaction.atomic(using=using):
        if not _fence(using, held):
            dispatch.stale_write_refused(held)
            return None
        if body is not None:
            result_json = body()
        StepRecord.objects.using(using).filter(run_id=held.run_id, seq=held.seq).update(
            status=StepRecord.Status.COMPLETED, result_json=result_json, error_json=None, finished_at=Now()
        )
        return _advance(using, held.run_id, (held, engine.Succeeded(result_json)), held.queue)


def record_failure(held: Claim, error: engine.ErrorInfo, retry_in: timedelta | None) -> Claim | None:
    """Record a failed attempt: schedule the retry, or give up and raise it in the workflow."""
    using = _database()
    with transaction.atomic(using=using):
        items = WorkItem.objects.using(using).filter(pk=held.item_id, token=held.token)
        records = StepRecord.objects.using(using).filter(run_id=held.run_id, seq=held.seq)
        if retry_in is not None:
            hint = dispatch.countdown_hint(retry_in)
            updated = items.update(
                lease_expires_at=None,
                available_at=db_now_plus(retry_in.total_seconds()),
                dispatched_at=None if hint is None else db_now_plus(retry_in.total_seconds()),
            )
            if not updated:
                dispatch.stale_write_refused(held)
                return None
            records.update(error_json=error.as_json())
            if hint is not None:
                dispatch.after_commit(held.item_id, held.queue, using=using, countdown=hint)
            return None
        if not items.delete()[0]:
            dispatch.stale_write_refused(held)
            return None
        records.update(status=StepRecord.Status.FAILED, error_json=error.as_json(), finished_at=Now())
        return _advance(using, held.run_id, (held, engine.Failed(error)), held.queue)


def _advance(using: str, run_id: uuid.UUID, finished: tuple[Claim, engine.Outcome] | None, queue: str) -> Claim | None:
    """Feed the newest outcome to the workflow and apply its decision. Inside a transaction."""
    run = (
        WorkflowRun.objects.using(using)
        .select_for_update()
        .only("id", "workflow_id", "workflow_name", "status", "input_json", "next_seq")
        .get(pk=run_id)
    )
    if run.status not in LIVE:
        return None
    interpreter = None
    if finished is not None and run.next_seq == finished[0].seq + 1:
        interpreter = cache.take(run.id, finished[0].seq)
    if interpreter is not None and finished is not None:
        held, outcome = finished
        history = {held.seq: engine.Recorded("step", held.step, held.args_json, outcome)}
    else:
        try:
            definition = resolve_workflow(run.workflow_name)
        except WorkflowNotRegistered as error:
            _finish(using, run, WorkflowRun.Status.BLOCKED, error_json=engine.error_info(error).as_json())
            return None
        args, kwargs = decode_arguments(run.input_json)
        interpreter = engine.Interpreter(run.workflow_name, definition.func, args, kwargs)
        history = _history(using, run.id)
    decision = engine.decide(interpreter, history)
    return _apply(using, run, interpreter, decision, queue)


def _history(using: str, run_id: uuid.UUID) -> dict[int, engine.Recorded]:
    rows = (
        StepRecord.objects.using(using)
        .filter(run_id=run_id)
        .values_list("seq", "kind", "name", "args_json", "status", "result_json", "error_json")
    )
    history: dict[int, engine.Recorded] = {}
    for seq, kind, name, args_json, status, result_json, error_json in rows:
        outcome: engine.Outcome | None = None
        if status == StepRecord.Status.COMPLETED:
            outcome = engine.Succeeded(result_json)
        elif status == StepRecord.Status.FAILED:
            outcome = engine.Failed(engine.ErrorInfo.from_json(error_json))
        history[seq] = engine.Recorded(kind, name, args_json, outcome)
    return history


def _apply(
    using: str, run: WorkflowRun, interpreter: engine.Interpreter, decision: engine.Decision, queue: str
) -> Claim | None:
    if isinstance(decision, engine.Complete):
        _finish(using, run, WorkflowRun.Status.COMPLETED, result_json=decision.result_json)
    elif isinstance(decision, engine.Fail):
        _finish(using, run, WorkflowRun.Status.FAILED, error_json=decision.error.as_json())
    elif isinstance(decision, engine.Block):
        error = engine.ErrorInfo(type="durable_django.NonDeterminismError", message=decision.message)
        _finish(using, run, WorkflowRun.Status.BLOCKED, error_json=error.as_json())
    elif isinstance(decision, engine.Wait):
        transaction.on_commit(lambda: cache.put(run.id, interpreter), using=using)
    else:
        return _schedule(using, run, interpreter, decision, queue)
    interpreter.close()
    return None


def _schedule(
    using: str, run: WorkflowRun, interpreter: engine.Interpreter, decision: engine.Schedule, queue: str
) -> Claim | None:
    request = decision.request
    try:
        definition = lookup_step(request.step)
    except WorkflowNotRegistered as error:
        interpreter.close()
        _finish(using, run, WorkflowRun.Status.BLOCKED, error_json=engine.error_info(error).as_json())
        return None
    step_queue = definition.queue or ""
    inline = step_queue == queue
    lease = definition.timeout_seconds + float(settings.LEASE_GRACE)
    StepRecord.objects.using(using).create(
        run=run,
        seq=decision.seq,
        name=request.step,
        args_json=request.args_json,
        attempts=1 if inline else 0,
        started_at=Now() if inline else None,
    )
    item = WorkItem.objects.using(using).create(
        run=run,
        kind=WorkItem.Kind.STEP,
        seq=decision.seq,
        queue=step_queue,
        lease_seconds=lease,
        token=1 if inline else 0,
        lease_expires_at=db_now_plus(lease) if inline else None,
        owner=lease_owner() if inline else "",
        dispatched_at=Now(),
    )
    WorkflowRun.objects.using(using).filter(pk=run.pk).update(
        next_seq=decision.seq + 1, status=WorkflowRun.Status.RUNNING, updated_at=Now()
    )
    transaction.on_commit(lambda: cache.put(run.id, interpreter), using=using)
    if not inline:
        dispatch.after_commit(item.pk, step_queue, using=using)
        return None
    return Claim(
        item_id=item.pk,
        token=1,
        run_id=run.id,
        workflow_id=run.workflow_id,
        seq=decision.seq,
        step=request.step,
        args_json=request.args_json,
        attempt=1,
        queue=step_queue,
    )


def _finish(
    using: str, run: WorkflowRun, status: str, *, result_json: str | None = None, error_json: str | None = None
) -> None:
    WorkflowRun.objects.using(using).filter(pk=run.pk).update(
        status=status,
        result_json=result_json,
        error_json=error_json,
        updated_at=Now(),
        finished_at=None if status == WorkflowRun.Status.BLOCKED else Now(),
    )


def release(held: Claim) -> None:
    """Give a claimed item back (hand-off to another worker) without counting an attempt."""
    using = _database()
    with transaction.atomic(using=using):
        released = (
            WorkItem.objects.using(using)
            .filter(pk=held.item_id, token=held.token)
            .update(lease_expires_at=None, dispatched_at=Now())
        )
        if released:
            StepRecord.objects.using(using).filter(run_id=held.run_id, seq=held.seq).update(attempts=F("attempts") - 1)
            dispatch.after_commit(held.item_id, held.queue, using=using)
