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

    ``max_attempts=None`` retries without end (Temporal's default), each wait capped at
    ``maximum_interval``. ``non_retryable`` lists exception types that fail the step at once, whatever the
    attempt count (a declined card will not succeed on retry).
    """

    max_attempts: int | None = 3
    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta = timedelta(minutes=5)
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if attempts is not None and (not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1):
            raise WorkflowDefinitionError(
                f"RetryPolicy(max_attempts={attempts!r}): use an int of at least 1 (1 means no retries), "
                "or None for no limit."
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
        if self.out_of_attempts(attempt):
            return None
        initial, cap = self.initial_interval, self.maximum_interval
        if initial >= cap or initial == timedelta(0):
            return min(initial, cap)
        # Compared in logarithms: past a thousand or so attempts the power overflows a float.
        if (attempt - 1) * math.log(self.backoff_coefficient) >= math.log(cap / initial):
            return cap
        return timedelta(seconds=initial.total_seconds() * self.backoff_coefficient ** (attempt - 1))

    def out_of_attempts(self, attempt: int) -> bool:
        """True once ``attempt`` was the last one allowed (never with ``max_attempts=None``)."""
        return self.max_attempts is not None and attempt >= self.max_attempts

    def gives_up_on(self, error: BaseException, attempt: int) -> bool:
        """True when ``error`` on ``attempt`` ends the step for good."""
        return self.out_of_attempts(attempt) or isinstance(error, self.non_retryable)
