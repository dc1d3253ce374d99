"""What a running step can learn about itself: :func:`step_context`."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import StepContextUnavailable

__all__ = ["StepContext", "step_context"]


@dataclass(frozen=True, kw_only=True, slots=True)
class StepContext:
    """Identity of the step attempt that is running.

    ``idempotency_key`` is the same for every attempt of this step in this run, across
    retries and worker crashes; pass it to external APIs so they apply an effect once.
    ``heartbeat_details`` is what the last :meth:`heartbeat` of this step reported, in this
    attempt or an earlier one (None before any), so a new attempt can resume where the
    last one got to.
    """

    run_id: str
    workflow_id: str
    step: str
    seq: int
    attempt: int
    idempotency_key: str
    heartbeat_details: Any = None
    _beat: Callable[[Any], bool] | None = field(default=None, repr=False, compare=False)

    def heartbeat(self, details: Any = None) -> bool:
        """Say this attempt is alive: its lease is extended and ``details`` (JSON) kept for a later attempt.

        Returns True once the run has been cancelled: the step may stop early (return or
        raise); its outcome is recorded and ``Cancelled`` is raised at its yield. Raises
        :class:`~durable_django.exceptions.LeaseLost` if this attempt no longer holds the
        step (its lease ran out and another attempt took it): stop, its result would be
        refused. Inside an atomic step it does nothing and returns False: that step runs in
        the transaction that records it, which a cancel cannot enter.
        """
        return False if self._beat is None else self._beat(details)


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("durable_step_context", default=None)


def step_context() -> StepContext:
    """Return the context of the step attempt running now."""
    context = _current.get()
    if context is None:
        raise StepContextUnavailable(
            "durable.step_context() was called outside a running step; call it only inside a "
            "function decorated with @durable.step while a worker runs it."
        )
    return context


@contextmanager
def running(context: StepContext) -> Iterator[None]:
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)
