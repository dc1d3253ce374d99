"""Run claimed steps: external ones outside any transaction, atomic ones inside one.

A worker keeps going with the next step of the same run without a broker round trip,
for up to ``DURABLE_INLINE_SECONDS``, then hands the run back to the queue.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from ..conf import settings
from ..core import codec, context
from ..core.interpreter import error_info
from ..core.registry import StepCode
from ..core.registry import step as lookup_step
from ..core.requests import decode_arguments
from ..exceptions import DurableError, SerializationError, StepTimeout, WorkerLost, WorkflowNotRegistered
from ..store import first_advance, observe, poison, timers, work_items
from ..store.faults import crash_point
from ..store.leases import Claim, database
from ..store.locking import RunBusy
from . import connections

__all__ = ["REPORT_PATIENCE", "fire", "work", "work_many"]

#: How long a worker waits, at most, for a caller's transaction to let go of a run before it
#: hands the step back (it then runs again, with the same idempotency key).
REPORT_PATIENCE = 300.0


def work(item_id: int) -> int:
    """Claim ``item_id`` and continue with the run's next steps; returns steps run."""
    return _go_on(work_items.take(item_id))


def work_many(item_ids: list[int]) -> int:
    """Work several items: fresh runs' first advances together (one commit), the rest one by one."""
    steps = 0
    for item_id in first_advance.advance_many(database(), item_ids):
        connections.discard_broken_connections()
        steps += work(item_id)
    return steps


def _go_on(held: Claim | None) -> int:
    """Run ``held`` and the run's next steps inline, for up to ``INLINE_SECONDS``; returns steps run."""
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


def fire(item_ids: list[int]) -> int:
    """Fire a batch of due timers; if the batch fails as a whole, take its items one by one instead."""
    try:
        return timers.fire_batch(item_ids)
    except timers.BatchFailed:
        for item_id in item_ids:
            work(item_id)
        return 0


def _run_step(held: Claim) -> Claim | None:
    try:
        definition = lookup_step(held.step)
    except WorkflowNotRegistered as error:  # an older worker, mid-deploy: leave the step to one that has it
        missing = error_info(error)
        return _report(held, lambda: work_items.park(held, missing))
    if definition.retry.out_of_attempts(held.attempt - 1):  # every attempt so far died without a word
        lost = WorkerLost(
            f"the process running attempt {held.attempt - 1} of step {held.step!r} died before it reported "
            "(its lease expired), and no attempt is left; look for OOM kills or crashes in the worker logs"
        )
        return _report(held, lambda: work_items.record_failure(held, error_info(lost), retry_in=None))
    if definition.atomic:
        return _run_atomic(held, definition)
    try:
        args, kwargs = decode_arguments(held.args_json)
        with _attempt(held, definition):
            value = definition.func(*args, **kwargs)
        result_json = codec.encode(value, f"the result of step {held.step!r}")
    except Exception as error:
        failure, retry_in = error_info(error), _retry_in(definition, error, held.attempt)
        return _report(held, lambda: work_items.record_failure(held, failure, retry_in))
    crash_point("step.after_call")
    return _report(held, lambda: work_items.record_success(held, result_json))


class _StepRaised(Exception):
    """An atomic step's own error, carried out of the transaction it rolled back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _run_atomic(held: Claim, definition: StepCode) -> Claim | None:
    args, kwargs = decode_arguments(held.args_json)

    def body() -> str:
        try:
            with _attempt(held, definition):
                value = definition.func(*args, **kwargs)
                return codec.encode(value, f"the result of step {held.step!r}")
        except Exception as error:
            raise _StepRaised(error) from error

    try:
        return _report(held, lambda: work_items.record_success(held, "", body=body), reraise=(_StepRaised,))
    except _StepRaised as raised:
        failure, retry_in = error_info(raised.error), _retry_in(definition, raised.error, held.attempt)
        return _report(held, lambda: work_items.record_failure(held, failure, retry_in))


def _report(held: Claim, record: Callable[[], Claim | None], reraise: tuple[type[Exception], ...] = ()) -> Claim | None:
    """Record an attempt's outcome, however long a caller holds the run (within reason), keeping the lease.

    A caller's open transaction holds the run's row (``run.signal()`` until it commits):
    the worker waits outside any transaction and keeps its lease alive meanwhile. An error
    of the connection hands the step back at once instead of holding it for its timeout; any
    other error is counted, and the third blocks the run (:mod:`durable_django.store.poison`).
    """
    deadline = time.monotonic() + REPORT_PATIENCE
    pause = 0.02
    while True:
        try:
            return record()
        except RunBusy:
            if time.monotonic() > deadline or not work_items.extend_lease(held):
                work_items.hand_back(held)
                return None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        except reraise:
            raise
        except poison.TRANSIENT:
            connections.discard_broken_connections()
            with contextlib.suppress(Exception):  # the database may still be away: then the lease runs out
                work_items.hand_back(held)
            raise
        except Exception as error:
            poison.step_report_failed(database(), held.item_id, held.token, held.run_id, error)
            return None


def _retry_in(definition: StepCode, error: Exception, attempt: int) -> timedelta | None:
    if isinstance(error, SerializationError) or definition.retry.gives_up_on(error, attempt):
        return None
    return definition.retry.delay_after(attempt)


@contextmanager
def _attempt(held: Claim, definition: StepCode) -> Iterator[None]:
    beat = None if definition.atomic else _Heartbeat(held)
    step_context = context.StepContext(
        run_id=str(held.run_id),
        workflow_id=held.workflow_id,
        step=held.step,
        seq=held.seq,
        attempt=held.attempt,
        idempotency_key=held.idempotency_key,
        heartbeat_details=None if held.heartbeat_json is None else codec.decode(held.heartbeat_json),
        _beat=beat,
    )
    try:
        with (
            observe.step_attempt(held),
            context.running(step_context),
            _time_limit(held.step, definition.timeout_seconds),
        ):
            yield
    finally:
        if beat is not None:
            beat.flush()


class _Heartbeat:
    """One attempt's heartbeats: at most one write a second, however often the step calls.

    Details reported in between are kept and written with the next write, or when the
    attempt ends, so the next attempt resumes from the latest.
    """

    #: Seconds between two writes at least.
    EVERY = 1.0

    def __init__(self, held: Claim) -> None:
        self.held = held
        self.sent_at = -self.EVERY
        self.cancelled = False
        self.unsent: str | None = None

    def __call__(self, details: Any) -> bool:
        self.unsent = codec.encode(details, f"the heartbeat details of step {self.held.step!r}")
        if time.monotonic() - self.sent_at >= self.EVERY:
            self._send()
        return self.cancelled

    def _send(self) -> None:
        details_json, self.unsent = self.unsent, None
        if details_json is not None:
            self.cancelled = work_items.heartbeat(self.held, details_json)
            self.sent_at = time.monotonic()

    def flush(self) -> None:
        with contextlib.suppress(DurableError, *poison.TRANSIENT):  # the attempt's own outcome matters more
            self._send()


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
