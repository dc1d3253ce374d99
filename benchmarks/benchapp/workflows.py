"""Workflows the benchmark starts, discovered like a user's ``workflows.py``.

Names are explicit so that the driver can start them by name and so that they survive a move.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import durable_django as durable

from .models import Row


@durable.step(name="bench.noop")
def noop(value: int) -> int:
    """A trivial external step: what the engine itself costs per step."""
    return value + 1


@durable.step(name="bench.insert_row", atomic=True)
def insert_row(series: int, seq: int) -> int:
    """One ORM insert inside the checkpoint transaction: the same work as a chain task."""
    return Row.objects.create(series=series, seq=seq).pk


@durable.workflow(name="bench.trivial")
def trivial(steps: int) -> Generator[Any, Any, int]:
    value = 0
    for _ in range(steps):
        value = yield noop(value)
    return value


@durable.workflow(name="bench.atomic")
def atomic(series: int, steps: int) -> Generator[Any, Any, int]:
    for seq in range(steps):
        yield insert_row(series, seq)
    return steps


@durable.workflow(name="bench.sleeper")
def sleeper(until: str) -> Generator[Any, Any, None]:
    """Sleeps once, until the ISO time ``until``, then ends: the 100,000-sleepers scenario."""
    yield durable.sleep_until(datetime.fromisoformat(until))
