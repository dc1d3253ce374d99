"""What ordinary Django code does to runs: start, signal, cancel, resume and query them.

Every write joins the caller's transaction (or opens its own), so it commits with the
caller's rows or not at all, and wake-up messages go out only after that commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, models, transaction
from django.db.models.functions import Now

from .core import codec, engine
from .core.interpreter import ErrorInfo, Interpreter
from .core.registry import WorkflowCode, resolve_workflow
from .core.requests import decode_arguments, encode_arguments
from .exceptions import (
    DurableError,
    InvalidRequest,
    InvalidRunState,
    InvalidWorkflowId,
    NonDeterminismError,
    RunFinished,
    RunNotFound,
    WorkflowIdConflict,
)
from .models import Signal, WorkflowRun, WorkItem
from .store import observe, outbox
from .store.advance import lock_run
from .store.history import History
from .store.leases import database
from .store.lifecycle import finish, request_cancel
from .waiting import await_result, wait

__all__ = [
    "acancel",
    "aget_run",
    "aquery",
    "aresume",
    "asignal",
    "await_result",
    "cancel",
    "get_run",
    "query",
    "resume",
    "signal",
    "start",
    "wait",
]

Status = WorkflowRun.Status


def check_workflow_id(workflow_id: Any) -> str:
    if workflow_id is None:
        return str(uuid.uuid4())
    if not isinstance(workflow_id, str):
        raise InvalidWorkflowId(f"workflow_id={workflow_id!r} must be a str, for example f'order-{{order.pk}}'.")
    if not workflow_id or len(workflow_id) > 255 or workflow_id != workflow_id.strip():
        raise InvalidWorkflowId(
            f"workflow_id={workflow_id!r} must be 1 to 255 characters with no leading or trailing spaces."
        )
    if any(ord(char) < 32 for char in workflow_id):
        raise InvalidWorkflowId(f"workflow_id={workflow_id!r} contains control characters; use printable text.")
    return workflow_id


def start(
    definition: WorkflowCode,
    args: list[Any],
    kwargs: dict[str, Any],
    workflow_id: str | None,
    *,
    attributes: dict[str, Any] | None = None,
    subject: models.Model | None = None,
) -> WorkflowRun:
    """Create a run and its first work item in the caller's transaction (or a new one)."""
    input_json = encode_arguments(args, kwargs, f"workflow {definition.name!r}")
    workflow_id = check_workflow_id(workflow_id)
    using = database()
    linked = {} if subject is None else {"subject_type": subject._meta.label_lower, "subject_id": str(subject.pk)}
    try:
        with transaction.atomic(using=using):
            run = WorkflowRun.objects.using(using).create(
                workflow_id=workflow_id,
                workflow_name=definition.name,
                input_json=input_json,
                attributes=attributes or {},
                **linked,
            )
            outbox.wake(using, run.pk)
            observe.run_started(using, run.pk, workflow_id, definition.name)
    except IntegrityError:
        existing = WorkflowRun.objects.using(using).with_id(workflow_id).first()
        if existing is None:
            raise
        run = existing
    if run.workflow_name != definition.name:
        raise WorkflowIdConflict(
            f"workflow_id {workflow_id!r} already belongs to a run of {run.workflow_name!r}, "
            f"not {definition.name!r}; use a workflow_id that names the workflow, such as 'checkout-42'."
        )
    return run


def get_run(run: WorkflowRun | str) -> WorkflowRun:
    """The run itself, or the run with this ``workflow_id``."""
    if isinstance(run, WorkflowRun):
        return run
    found = WorkflowRun.objects.using(database()).with_id(run).first()
    if found is None:
        raise RunNotFound(f"no run has workflow_id {run!r}; runs are addressed by the workflow_id given to start().")
    return found


def _refuse_finished(run: WorkflowRun, status: str, action: str) -> None:
    raise RunFinished(f"run {run.workflow_id!r} is {status}; {action}. Check run.status first, or start a new run.")


def signal(run: WorkflowRun | str, name: str, payload: Any = None) -> None:
    """Send signal ``name`` with ``payload`` to a live run, in the caller's transaction.

    It waits in the run's inbox until a ``wait_signal(name)`` takes it; signals of one
    name are taken one per wait, oldest first.
    """
    run = get_run(run)
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidRequest(f"signal name {name!r} must be a str of 1 to 255 characters.")
    payload_json = codec.encode(payload, f"the payload of signal {name!r}")
    using = database()
    status = WorkflowRun.objects.using(using).filter(pk=run.pk).values_list("status", flat=True).first()
    if status is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    if status in WorkflowRun.FINISHED:
        _refuse_finished(run, status, f"signal {name!r} would never be read")
    with transaction.atomic(using=using, savepoint=False):  # nothing here fails but the database itself
        Signal.objects.using(using).create(run_id=run.pk, name=name, payload_json=payload_json)
        outbox.wake(using, run.pk)


def cancel(run: WorkflowRun | str) -> None:
    """Raise ``Cancelled`` in the workflow at its current yield, once the caller commits.

    A blocked run cannot replay to its yield, so it is cancelled on the spot.
    """
    run = get_run(run)
    using = database()
    with transaction.atomic(using=using):
        locked = lock_run(using, run.pk)
        if locked is None:
            raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
        if locked.status == Status.BLOCKED:
            error = ErrorInfo("durable_django.exceptions.Cancelled", "cancelled while blocked")
            finish(using, locked, Status.CANCELLED, error_json=error.as_json())
        elif not request_cancel(using, run.pk):
            _refuse_finished(run, locked.status, "there is nothing left to cancel")


def resume(run: WorkflowRun | str) -> None:
    """Let a blocked run continue after its code was fixed: it replays from the start."""
    run = get_run(run)
    using = database()
    with transaction.atomic(using=using):
        locked = lock_run(using, run.pk)
        if locked is None or locked.status != Status.BLOCKED:
            status = "gone" if locked is None else locked.status
            raise InvalidRunState(f"run {run.workflow_id!r} is {status}; only blocked runs can be resumed.")
        WorkflowRun.objects.using(using).filter(pk=run.pk).update(
            status=Status.RUNNING, error_json=None, updated_at=Now()
        )
        # Steps parked by workers that lacked their code are due again now.
        WorkItem.objects.using(using).of(run.pk).unleased().update(available_at=Now(), dispatched_at=None)
        outbox.wake(using, run.pk)


def query(run: WorkflowRun | str) -> dict[str, Any]:
    """The workflow's local variables where it waits now, by replay: nothing runs, nothing is written.

    Values JSON cannot hold show as ``"<module.Type>"``. A finished run has none.
    """
    run = get_run(run)
    using = database()
    current = (
        WorkflowRun.objects.using(using)
        .filter(pk=run.pk)
        .values_list("status", "workflow_name", "input_json", "next_seq")
        .first()
    )
    if current is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    status, name, input_json, next_seq = current
    if status in WorkflowRun.FINISHED:
        return {}
    args, kwargs = decode_arguments(input_json)
    interpreter = Interpreter(name, resolve_workflow(name).func, args, kwargs)
    try:
        decision = engine.decide(interpreter, History(using, run.pk, next_seq))
        if isinstance(decision.end, engine.Block):
            raise NonDeterminismError(decision.end.message)
        return {key: _shown(value) for key, value in interpreter.local_variables().items()}
    finally:
        interpreter.close()


def _shown(value: Any) -> Any:
    try:
        return codec.roundtrip(value)[1]
    except DurableError:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"


# The async twins run their sync sibling in the thread Django keeps for sync code, as Django's
# own ``aget()`` does. Each call is its own transaction: ``transaction.atomic`` is sync-only.


async def aget_run(run: WorkflowRun | str) -> WorkflowRun:
    """:func:`get_run` for async code."""
    return await sync_to_async(get_run)(run)


async def asignal(run: WorkflowRun | str, name: str, payload: Any = None) -> None:
    """:func:`signal` for async code; it commits on its own."""
    await sync_to_async(signal)(run, name, payload)


async def acancel(run: WorkflowRun | str) -> None:
    """:func:`cancel` for async code; it commits on its own."""
    await sync_to_async(cancel)(run)


async def aresume(run: WorkflowRun | str) -> None:
    """:func:`resume` for async code; it commits on its own."""
    await sync_to_async(resume)(run)


async def aquery(run: WorkflowRun | str) -> dict[str, Any]:
    """:func:`query` for async code (the replay runs in Django's sync thread)."""
    return await sync_to_async(query)(run)
