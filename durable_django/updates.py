"""Updates from ordinary Django code: send a command to a run and get the workflow's reply.

Sending is transactional like ``signal()``: the update and the run's wake-up commit together.
Waiting for the reply can only happen after that commit (the workflow cannot see the update
before), so :func:`update` refuses to run inside an open transaction instead of waiting on
itself. On PostgreSQL the caller sleeps on the run's ``NOTIFY`` channel; elsewhere it polls.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import connections, transaction

from .core import codec
from .core.registry import WorkflowCode, resolve_workflow
from .exceptions import InvalidRequest, RunFinished, RunNotFound, UpdateRejected, UpdateTimeout
from .models import WorkflowRun
from .runs import get_run, refuse_inside_workflow, refuse_other_database
from .runs import start as start_run
from .store import updates as store
from .store.leases import database
from .store.locking import shared_status
from .waiting import async_listener, listener, listens

if TYPE_CHECKING:
    from .definitions import WorkflowDefinition

__all__ = ["aupdate", "outcome", "send", "start_and_update", "update"]

_FIRST_POLL, _GROWTH, _LONGEST_POLL = 0.05, 1.5, 1.0


def _checked(name: object, payload: Any, timeout: float | timedelta, update_id: object) -> tuple[str, float, str]:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidRequest(f"update name {name!r} must be a str of 1 to 255 characters.")
    payload_json = codec.encode(payload, f"the payload of update {name!r}")
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
        raise InvalidRequest(f"update(timeout={timeout!r}): pass seconds (a number of at least 0) or a timedelta.")
    if update_id is None:
        update_id = str(uuid.uuid4())
    elif not isinstance(update_id, str) or not update_id or len(update_id) > 255:
        raise InvalidRequest(f"update_id={update_id!r} must be a str of 1 to 255 characters, such as 'coupon-42'.")
    return payload_json, float(seconds), update_id


def _refuse_open_transaction(using: str, call: str) -> None:
    if connections[using].in_atomic_block:
        raise InvalidRequest(
            f"{call} was called inside an open transaction: the workflow sees the update only once it commits, so "
            "waiting for the reply here would wait for itself. Call it after transaction.atomic() ends (for example "
            "in transaction.on_commit), or send a signal if you need no reply."
        )


def _validate(code: WorkflowCode, name: str, state_json: str | None, payload: Any) -> None:
    """The workflow's validator for ``name``, if it has one: it raises to reject the update before it is sent."""
    validators: Mapping[str, Callable[[Any, Any], Any]] = getattr(code, "validators", {})
    validator = validators.get(name)
    if validator is None:
        return
    state = None if state_json is None else codec.decode(state_json)
    try:
        validator(state, codec.roundtrip(payload)[1])
    except Exception as error:
        raise UpdateRejected(name, str(error) or type(error).__name__) from error


def update(
    run: WorkflowRun | str,
    name: str,
    payload: Any = None,
    *,
    timeout: float | timedelta = 30.0,
    update_id: str | None = None,
) -> Any:
    """Send update ``name`` with ``payload`` to a live run and return the workflow's reply.

    Raises :class:`UpdateRejected` if the workflow (or its validator) rejects it,
    :class:`UpdateTimeout` if no answer comes within ``timeout`` (the update stays sent), and
    :class:`RunFinished` if the run is finished, or finishes without answering. With the
    ``update_id`` of an earlier call, nothing is sent again and that call's answer comes back.
    """
    _, seconds, update_id = _checked(name, payload, timeout, update_id)
    run = get_run(run)
    using = database()
    _refuse_open_transaction(using, "update()")
    send(run, name, payload, update_id=update_id)
    return _answer(using, run, name, update_id, seconds)


def send(run: WorkflowRun, name: str, payload: Any = None, *, update_id: str | None = None) -> str:
    """Send update ``name`` in the caller's transaction, as ``signal()`` does, without waiting; its ``update_id``.

    The validator runs first; nothing is sent again for an ``update_id`` the run already has.
    """
    refuse_inside_workflow("update()", "answer updates with durable.reply(); send them from ordinary Django code")
    payload_json, _, update_id = _checked(name, payload, 0, update_id)
    using = database()
    refuse_other_database(using, "update()")
    if store.read_answer(using, run.pk, update_id) is None:  # not a retry of a call already sent
        current = WorkflowRun.objects.using(using).filter(pk=run.pk).values_list("workflow_name", "state_json")
        found = current.first()
        if found is None:
            raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
        _validate(resolve_workflow(found[0]), name, found[1], payload)
        with transaction.atomic(using=using):
            status = shared_status(using, run.pk)  # a run cannot finish unseen between this and the commit
            if status is None:
                raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
            if status in WorkflowRun.FINISHED:
                raise RunFinished(
                    f"run {run.workflow_id!r} is {status}; update {name!r} would never be answered. "
                    "Check run.status first, or start a new run."
                )
            store.send(using, run.pk, name, payload_json, update_id)
    return update_id


def start_and_update(
    code: WorkflowDefinition[Any],
    args: list[Any],
    kwargs: dict[str, Any],
    name: str,
    payload: Any = None,
    *,
    timeout: float | timedelta = 30.0,
    update_id: str | None = None,
) -> Any:
    """Start the run (or find it by its ``workflow_id``) and send it update ``name`` in one transaction; the reply.

    The run's options are ``code``'s (``using()``). A validator that rejects the update rolls
    the start back with it: nothing starts.
    """
    payload_json, seconds, update_id = _checked(name, payload, timeout, update_id)
    using = database()
    _refuse_open_transaction(using, "start_and_update()")
    options, limit = code.options, code.options.timeout or code.timeout
    with transaction.atomic(using=using):
        run = start_run(
            code,
            args,
            kwargs,
            options.workflow_id,
            attributes=options.attributes,
            subject=options.subject,
            timeout=None if limit is None else limit.total_seconds(),
        )
        if store.read_answer(using, run.pk, update_id) is None:
            status = shared_status(using, run.pk)
            if status in WorkflowRun.FINISHED:
                raise RunFinished(
                    f"run {run.workflow_id!r} is {status}; update {name!r} would never be answered. "
                    "Start it with another workflow_id."
                )
            state_json = WorkflowRun.objects.using(using).filter(pk=run.pk).values_list("state_json", flat=True).get()
            _validate(code, name, state_json, payload)
            store.send(using, run.pk, name, payload_json, update_id)
    return _answer(using, run, name, update_id, seconds)


def outcome(run: WorkflowRun, name: str, answer: store.Answer | None) -> tuple[bool, Any]:
    """``(True, reply)`` once answered (a rejection raised), ``(False, None)`` while pending."""
    if answer is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    if answer.answered:
        if answer.rejection is not None:
            raise UpdateRejected(name, answer.rejection)
        return True, None if answer.reply_json is None else codec.decode(answer.reply_json)
    if answer.run_finished:
        raise RunFinished(f"run {run.workflow_id!r} ended {answer.run_status} without answering update {name!r}.")
    return False, None


def _gave_up(run: WorkflowRun, name: str, update_id: str, seconds: float) -> UpdateTimeout:
    return UpdateTimeout(
        f"run {run.workflow_id!r} did not answer update {name!r} within {seconds:g} s; it stays sent: call "
        f"again with update_id={update_id!r} to get its answer."
    )


def _answer(using: str, run: WorkflowRun, name: str, update_id: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds

    if listens(using):
        with listener(run, using) as listen:  # listening before the first read: no answer slips between
            while not (found := outcome(run, name, store.read_answer(using, run.pk, update_id)))[0]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _gave_up(run, name, update_id, seconds)
                listen.notified(remaining)
            return found[1]
    interval = _FIRST_POLL
    while not (found := outcome(run, name, store.read_answer(using, run.pk, update_id)))[0]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _gave_up(run, name, update_id, seconds)
        time.sleep(min(interval, remaining))
        interval = min(interval * _GROWTH, _LONGEST_POLL)
    return found[1]


async def aupdate(
    run: WorkflowRun | str,
    name: str,
    payload: Any = None,
    *,
    timeout: float | timedelta = 30.0,
    update_id: str | None = None,
) -> Any:
    """:func:`update` for async code: the event loop goes on while the reply is awaited.

    Sending runs in Django's sync thread and commits on its own; the wait does not hold that thread.
    """
    _, seconds, update_id = _checked(name, payload, timeout, update_id)
    run = await sync_to_async(get_run)(run)
    update_id = await sync_to_async(send)(run, name, payload, update_id=update_id)
    using = database()
    deadline = time.monotonic() + seconds
    read = sync_to_async(store.read_answer)
    if listens(using):
        async with async_listener(run, using) as connection:  # listening before the first read
            while not (found := outcome(run, name, await read(using, run.pk, update_id)))[0]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _gave_up(run, name, update_id, seconds)
                async for _ in connection.notifies(timeout=remaining, stop_after=1):
                    pass
            return found[1]
    interval = _FIRST_POLL
    while not (found := outcome(run, name, await read(using, run.pk, update_id)))[0]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _gave_up(run, name, update_id, seconds)
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * _GROWTH, _LONGEST_POLL)
    return found[1]
