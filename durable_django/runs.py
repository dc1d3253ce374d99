"""What ordinary Django code does to runs: start, signal, cancel, resume and query them.

Every write joins the caller's transaction (or opens its own), so it commits with the
caller's rows or not at all, and wake-up messages go out only after that commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, connections, models, transaction

from . import queries
from .core import codec
from .core.interpreter import ErrorInfo, in_workflow
from .core.registry import WorkflowCode
from .core.requests import encode_arguments
from .exceptions import (
    DurableError,
    InvalidRequest,
    InvalidRunState,
    InvalidWorkflowId,
    RunFinished,
    RunNotFound,
    WorkflowIdConflict,
)
from .models import Signal, WorkflowRun, WorkItem
from .store import deadlines, observe, outbox
from .store.clock import Now
from .store.leases import database
from .store.lifecycle import finish, request_cancel
from .store.locking import lock_run, shared_status
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
    timeout: float | None = None,
) -> WorkflowRun:
    """Create a run and its first work item in the caller's transaction (or a new one).

    ``timeout`` (seconds) arms the run's deadline, by the database's clock.

    A ``workflow_id`` that exists returns that run if it was started with the same arguments;
    other arguments raise :class:`WorkflowIdConflict`, naming both.
    """
    refuse_inside_workflow("start()", f"yield {definition.name.rsplit('.', 1)[-1]}(...) runs it as a child")
    input_json = encode_arguments(args, kwargs, f"workflow {definition.name!r}")
    workflow_id = check_workflow_id(workflow_id)
    using = database()
    refuse_other_database(using, "start()")
    linked = {} if subject is None else {"subject_type": subject._meta.label_lower, "subject_id": str(subject.pk)}
    try:
        with transaction.atomic(using=using):
            run = WorkflowRun.objects.using(using).create(
                workflow_id=workflow_id,
                workflow_name=definition.name,
                input_json=input_json,
                attributes=attributes or {},
                deadline_at=deadlines.deadline_for(using, timeout),
                **linked,
            )
            if run.deadline_at is not None:
                deadlines.arm(using, run.pk, run.deadline_at)
            outbox.wake(using, run.pk)
            observe.run_started(using, run.pk, workflow_id, definition.name)
    except IntegrityError:
        existing = WorkflowRun.objects.using(using).with_id(workflow_id).first()
        if existing is None:
            raise
        run = existing
    check_same_start(run, definition.name, workflow_id, input_json)
    return run


def check_same_start(run: WorkflowRun, name: str, workflow_id: str, input_json: str) -> None:
    """Starting ``workflow_id`` again returns ``run`` only with the same workflow and arguments."""
    if run.workflow_name != name:
        raise WorkflowIdConflict(
            f"workflow_id {workflow_id!r} already belongs to a run of {run.workflow_name!r}, "
            f"not {name!r}; use a workflow_id that names the workflow, such as 'checkout-42'."
        )
    started_with = run.initial_input_json or run.input_json  # the first generation's, after continue_as_new
    if codec.decode(started_with) != codec.decode(input_json):
        raise WorkflowIdConflict(
            f"workflow_id {workflow_id!r} already belongs to a run of {name!r} started with "
            f"{started_with}, not {input_json}; the same id with the same arguments returns that run, so use "
            "another workflow_id for other arguments."
        )


def refuse_inside_workflow(call: str, instead: str) -> None:
    """Workflow code replays: a call with a side effect there would happen again at every replay."""
    if in_workflow():
        raise InvalidRequest(f"{call} was called inside workflow code, which runs again at every replay; {instead}.")


def refuse_other_database(using: str, call: str) -> None:
    """The caller's transaction is on another database than durable_django's: they cannot commit together."""
    if connections[using].in_atomic_block:
        return
    for other in connections.all(initialized_only=True):
        if other.alias != using and other.in_atomic_block:
            raise InvalidRequest(
                f"{call} inside a transaction on database {other.alias!r}, while durable_django writes to "
                f"{using!r}: the run would not commit or roll back with your data. Route durable_django's models "
                f"to {other.alias!r} (DATABASE_ROUTERS), or call it outside that transaction."
            )


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
    refuse_inside_workflow("signal()", "send signals from a step, or from ordinary Django code")
    run = get_run(run)
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidRequest(f"signal name {name!r} must be a str of 1 to 255 characters.")
    payload_json = codec.encode(payload, f"the payload of signal {name!r}")
    using = database()
    refuse_other_database(using, "signal()")
    # No savepoint (one round trip less); so nothing is raised inside the block, where it
    # would leave the caller's transaction unusable: a refusal is raised once out of it.
    with transaction.atomic(using=using, savepoint=False):
        # Shared with other senders, exclusive of a worker finishing the run: a run cannot end
        # between this check and the caller's commit without seeing this signal.
        status = shared_status(using, run.pk)
        if status is not None and status not in WorkflowRun.FINISHED:
            Signal.objects.using(using).create(run_id=run.pk, name=name, payload_json=payload_json)
            outbox.wake(using, run.pk)
    if status is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    if status in WorkflowRun.FINISHED:
        _refuse_finished(run, status, f"signal {name!r} would never be read")


def cancel(run: WorkflowRun | str) -> None:
    """Raise ``Cancelled`` in the workflow at its current yield, once the caller commits.

    A blocked run cannot replay to its yield, so it is cancelled on the spot.
    """
    refuse_inside_workflow("cancel()", "to end this run, raise or return; to cancel another run, do it in a step")
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
        # Steps parked by workers that lacked their code are due again now; timers keep their time.
        items = WorkItem.objects.using(using).of(run.pk)
        items.unleased().exclude(kind=WorkItem.Kind.TIMER).update(available_at=Now(), dispatched_at=None)
        items.update(failures=0)
        outbox.wake(using, run.pk)


def query(run: WorkflowRun | str, name: str | None = None, /, *args: Any) -> Any:
    """Without a name: the workflow's local variables where it waits now, by replay. Nothing runs, nothing is written.

    Values JSON cannot hold show as ``"<module.Type>"``. A finished run has none (``{}``).
    With a name: the answer of the workflow's query ``name`` (``@wf.query(name)``), given
    ``args``; see :meth:`~durable_django.WorkflowDefinition.query`.
    """
    run = get_run(run)
    if name is not None:
        return queries.answer(run, name, args)
    return {key: _shown(value) for key, value in queries.local_variables(run).items()}


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


async def aquery(run: WorkflowRun | str, name: str | None = None, /, *args: Any) -> Any:
    """:func:`query` for async code (the replay runs in Django's sync thread)."""
    return await sync_to_async(query)(run, name, *args)
