from __future__ import annotations

from datetime import timedelta

import pytest

import durable_django as durable

POLICY = durable.RetryPolicy(
    max_attempts=5, initial_interval=timedelta(seconds=1), backoff_coefficient=2, maximum_interval=timedelta(seconds=5)
)


@pytest.mark.parametrize(
    "attempt,delay",
    [
        (1, timedelta(seconds=1)),
        (2, timedelta(seconds=2)),
        (3, timedelta(seconds=4)),
        (4, timedelta(seconds=5)),
        (5, None),
    ],
)
def test_backoff_doubles_up_to_the_cap_and_stops_after_the_last_attempt(attempt, delay):
    assert POLICY.delay_after(attempt) == delay


def test_non_retryable_errors_give_up_at_once():
    policy = durable.RetryPolicy(max_attempts=5, non_retryable=(ValueError,))
    assert policy.gives_up_on(ValueError("declined"), attempt=1)
    assert not policy.gives_up_on(RuntimeError("503"), attempt=1)
    assert policy.gives_up_on(RuntimeError("503"), attempt=5)
