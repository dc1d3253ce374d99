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


UNLIMITED = durable.RetryPolicy(
    max_attempts=None, initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
)


@pytest.mark.parametrize("attempt", [1, 3, 100, 5_000, 10**9])
def test_unlimited_attempts_always_retry_within_the_backoff_cap(attempt):
    delay = UNLIMITED.delay_after(attempt)
    assert delay is not None and timedelta(0) < delay <= timedelta(minutes=5)
    assert not UNLIMITED.gives_up_on(RuntimeError("503"), attempt)


def test_unlimited_attempts_reach_the_cap_and_stay_there():
    assert UNLIMITED.delay_after(1) == timedelta(seconds=1)
    assert UNLIMITED.delay_after(20) == timedelta(minutes=5)
    assert UNLIMITED.delay_after(50_000) == timedelta(minutes=5)


def test_unlimited_attempts_still_give_up_on_non_retryable_errors():
    policy = durable.RetryPolicy(max_attempts=None, non_retryable=(ValueError,))
    assert policy.gives_up_on(ValueError("declined"), attempt=1)


def test_a_huge_attempt_number_does_not_overflow_the_backoff():
    # 2.0 ** 1100 overflows a float: a step retried for weeks must not crash its worker.
    assert POLICY.delay_after(4) == timedelta(seconds=5)
    big = durable.RetryPolicy(max_attempts=10**6, maximum_interval=timedelta(hours=1))
    assert big.delay_after(2_000) == timedelta(hours=1)
