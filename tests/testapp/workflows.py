"""Workflows the tests run, discovered like a user's ``workflows.py``."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import durable_django as durable

from .models import Counter


@durable.step(name="tests.double")
def double(value: int) -> int:
    return value * 2


@durable.workflow(name="tests.echo")
def echo_workflow(value, **extra):
    doubled = yield double(value)
    return {"value": value, "doubled": doubled, "extra": extra}


@durable.workflow(name="tests.chain")
def chain(steps: int):
    total = 0
    for index in range(steps):
        total = yield double(index) if index % 2 else add_one(total)
    return total


@durable.step(name="tests.add_one")
def add_one(value: int) -> int:
    return value + 1


@durable.step(name="tests.bump", atomic=True)
def bump(name: str) -> int:
    counter, _ = Counter.objects.get_or_create(name=name)
    Counter.objects.filter(pk=counter.pk).update(value=counter.value + 1)
    return counter.value + 1


@durable.step(
    name="tests.flaky",
    retry=durable.RetryPolicy(max_attempts=3, initial_interval=timedelta(milliseconds=10), non_retryable=(KeyError,)),
)
def flaky(fail_times: int, kind: str = "runtime") -> int:
    attempt = durable.step_context().attempt
    if attempt <= fail_times:
        raise KeyError("missing") if kind == "key" else RuntimeError(f"attempt {attempt} failed")
    return attempt


@durable.workflow(name="tests.flaky_workflow")
def flaky_workflow(fail_times: int, kind: str = "runtime"):
    try:
        attempt = yield flaky(fail_times, kind)
    except durable.StepFailed as error:
        return {"gave_up": error.error_type}
    return {"succeeded_on": attempt}


@durable.workflow(name="tests.uncaught")
def uncaught_workflow():
    yield flaky(99)


@durable.step(
    name="tests.slow",
    timeout=timedelta(seconds=0.3),
    retry=durable.RetryPolicy(max_attempts=2, initial_interval=timedelta(0)),
)
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@durable.workflow(name="tests.slow_workflow")
def slow_workflow(seconds: float):
    try:
        return (yield slow(seconds))
    except durable.StepFailed as error:
        return error.error_type


@durable.step(name="tests.bad_result")
def bad_result() -> object:
    return {"when": {1}}


@durable.workflow(name="tests.bad_result_workflow")
def bad_result_workflow():
    yield bad_result()


@durable.step(name="tests.context")
def context_step() -> dict:
    context = durable.step_context()
    return {"key": context.idempotency_key, "attempt": context.attempt, "pid": os.getpid()}


@durable.step(name="tests.routed", queue="special")
def routed() -> str:
    return "routed"


@durable.workflow(name="tests.routed_workflow")
def routed_workflow():
    where = yield routed()
    again = yield double(2)
    return [where, again]


@durable.workflow(name="tests.bump_twice")
def bump_twice(name: str):
    first = yield bump(name)
    second = yield bump(name)
    return [first, second]
