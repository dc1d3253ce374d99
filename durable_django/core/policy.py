"""Retry policies: how many attempts a step gets and how long to wait between them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from ..exceptions import WorkflowDefinitionError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``initial_interval * backoff_coefficient ** (attempt - 1)``, capped.

    ``non_retryable`` lists exception types that fail the step at once, whatever the
    attempt count (a declined card will not succeed on retry).
    """

    max_attempts: int = 3
    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta = timedelta(minutes=5)
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise WorkflowDefinitionError(
                f"RetryPolicy(max_attempts={self.max_attempts!r}): use an int of at least 1 (1 means no retries)."
            )
        for name in ("initial_interval", "maximum_interval"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise WorkflowDefinitionError(f"RetryPolicy({name}={value!r}): use a timedelta of zero or more.")
        coefficient = self.backoff_coefficient
        if not isinstance(coefficient, int | float) or not math.isfinite(coefficient) or coefficient < 1:
            raise WorkflowDefinitionError(
                f"RetryPolicy(backoff_coefficient={coefficient!r}): use a finite number of at least 1."
            )
        for kind in self.non_retryable:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise WorkflowDefinitionError(
                    f"RetryPolicy(non_retryable=...) holds {kind!r}; list exception classes only."
                )

    def delay_after(self, attempt: int) -> timedelta | None:
        """The wait before the next attempt after ``attempt`` failed, or None if none is left."""
        if attempt >= self.max_attempts:
            return None
        seconds = self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 1)
        return min(timedelta(seconds=seconds), self.maximum_interval)

    def gives_up_on(self, error: BaseException, attempt: int) -> bool:
        """True when ``error`` on ``attempt`` ends the step for good."""
        return attempt >= self.max_attempts or isinstance(error, self.non_retryable)
