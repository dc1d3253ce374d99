"""What a running step can learn about itself: :func:`step_context`."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..exceptions import StepContextUnavailable

__all__ = ["StepContext", "step_context"]


@dataclass(frozen=True, kw_only=True, slots=True)
class StepContext:
    """Identity of the step attempt that is running.

    ``idempotency_key`` is the same for every attempt of this step in this run, across
    retries and worker crashes; pass it to external APIs so they apply an effect once.
    """

    run_id: str
    workflow_id: str
    step: str
    seq: int
    attempt: int
    idempotency_key: str


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
