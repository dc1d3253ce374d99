"""Workflows only the toolkit's tests use (registered when this module is imported)."""

from __future__ import annotations

from datetime import timedelta

import durable_django as durable
from tests.testapp.workflows import bump, double


@durable.workflow(name="tests.toolkit.month")
def month(key: str):
    """A 30-day trial: bumps a counter when it starts, after 30 days, and a day later."""
    yield bump(f"{key}:start")
    yield durable.sleep(timedelta(days=30))
    yield bump(f"{key}:day 30")
    yield durable.sleep(timedelta(days=1))
    return (yield bump(f"{key}:day 31"))


@durable.workflow(name="tests.toolkit.shipping")
def shipping(order_id: int):
    charged = yield double(order_id)
    note = yield durable.wait_signal("shipped", timeout=timedelta(days=7))
    if note is None:
        return {"charged": charged, "shipped": False}
    both = yield durable.all_of(double(1), double(2))
    return {"charged": charged, "shipped": note, "both": both}


@durable.step(
    name="tests.toolkit.fails_twice",
    retry=durable.RetryPolicy(max_attempts=3, initial_interval=timedelta(seconds=30)),
)
def fails_twice() -> int:
    attempt = durable.step_context().attempt
    if attempt <= 2:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


@durable.workflow(name="tests.toolkit.retried")
def retried():
    return (yield fails_twice())
