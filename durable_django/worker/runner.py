"""Run claimed steps: external ones outside any transaction, atomic ones inside one.

A worker keeps going with the next step of the same run without a broker round trip,
for up to ``DURABLE_INLINE_SECONDS``, then hands the run back to the queue.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from ..conf import settings
from ..core import codec, context
from ..core.interpreter import error_info
from ..core.registry import StepCode
from ..core.registry import step as lookup_step
from ..core.requests import decode_arguments
from ..exceptions import SerializationError, StepTimeout, WorkerLost, WorkflowNotRegistered
from ..store import observe, work_items
from ..store.faults import crash_point
from ..store.leases import Claim

__all__ = ["work"]


def work(item_id: int) -> int:
    """Claim ``item_id`` and continue with the run's next steps; returns steps run."""
    held = work_items.take(item_id)
    deadline = time.monotonic() + settings.INLINE_SECONDS
    steps = 0
    while held is not None:
        if steps and time.monotonic() > deadline:
            work_items.release(held)
            break
        crash_point("step.after_claim")
        held = _run_step(held)
        crash_point("step.after_checkpoint")
        steps += 1
    return steps


def _run_step(held: Claim) -> Claim | None:
    try:
        definition = lookup_step(held.step)
    except WorkflowNotRegistered as error:  # an older worker, mid-deploy: leave the step to one that has it
        work_items.park(held, error_info(error))
        return None
    if definition.retry.out_of_attempts(held.attempt - 1):  # every attempt so far died without a word
        lost = WorkerLost(
            f"the process running attempt {held.attempt - 1} of step {held.step!r} died before it reported "
            "(its lease expired), and no attempt is left; look for OOM kills or crashes in the worker logs"
        )
        return work_items.record_failure(held, error_info(lost), retry_in=None)
    if definition.atomic:
        return _run_atomic(held, definition)
    try:
        args, kwargs = decode_arguments(held.args_json)
        with _attempt(held, definition):
            value = definition.func(*args, **kwargs)
        result_json = codec.encode(value, f"the result of step {held.step!r}")
    except Exception as error:
        return work_items.record_failure(held, error_info(error), _retry_in(definition, error, held.attempt))
    crash_point("step.after_call")
    return work_items.record_success(held, result_json)


def _run_atomic(held: Claim, definition: StepCode) -> Claim | None:
    args, kwargs = decode_arguments(held.args_json)

    def body() -> str:
        with _attempt(held, definition):
            value = definition.func(*args, **kwargs)
            return codec.encode(value, f"the result of step {held.step!r}")

    try:
        return work_items.record_success(held, "", body=body)
    except Exception as error:
        return work_items.record_failure(held, error_info(error), _retry_in(definition, error, held.attempt))


def _retry_in(definition: StepCode, error: Exception, attempt: int) -> timedelta | None:
    if isinstance(error, SerializationError) or definition.retry.gives_up_on(error, attempt):
        return None
    return definition.retry.delay_after(attempt)


@contextmanager
def _attempt(held: Claim, definition: StepCode) -> Iterator[None]:
    step_context = context.StepContext(
        run_id=str(held.run_id),
        workflow_id=held.workflow_id,
        step=held.step,
        seq=held.seq,
        attempt=held.attempt,
        idempotency_key=held.idempotency_key,
    )
    with observe.step_attempt(held), context.running(step_context), _time_limit(held.step, definition.timeout_seconds):
        yield


@contextmanager
def _time_limit(step: str, seconds: float) -> Iterator[None]:
    """Interrupt the step with :class:`StepTimeout` after ``seconds`` (main thread only).

    Elsewhere the lease bounds the attempt: once it expires another worker may claim the
    step, and this one's late result is refused by the fencing token.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise StepTimeout(f"step {step!r} ran longer than its timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
