"""The cost of a request does not grow with the history before it, whatever its shape.

A long run is not replayed from the start at each request: the worker's live generator
goes on from where it stopped. Each shape loops 20 times and 200 times; the queries per
iteration and the replays (generators started) must be the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from durable_django import updates
from durable_django.core import interpreter
from durable_django.models import WorkflowRun
from durable_django.testing import no_broker, run_until_idle
from tests.testapp import compositions

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Cost:
    queries: int
    replays: int


def measure(start: Callable[[int], WorkflowRun], n: int, nudge: Callable[[WorkflowRun], Any] | None) -> Cost:
    started = []
    original = interpreter.Interpreter.__init__

    def counting(self: Any, name: str, *args: Any, **kwargs: Any) -> None:
        started.append(name)
        original(self, name, *args, **kwargs)

    interpreter.Interpreter.__init__ = counting  # type: ignore[method-assign]
    try:
        with no_broker(), CaptureQueriesContext(connection) as queries:
            run = start(n)
            run_until_idle()
            for _ in range(n if nudge else 0):
                nudge(run)
                run_until_idle()
    finally:
        interpreter.Interpreter.__init__ = original  # type: ignore[method-assign]
    run.refresh_from_db()
    assert run.status == WorkflowRun.Status.COMPLETED, run.error
    return Cost(len(queries), sum(1 for name in started if name == run.workflow_name))


SHAPES: dict[str, tuple[Callable[[int], WorkflowRun], Callable[[WorkflowRun], Any] | None]] = {
    "steps": (compositions.loop_steps.start, None),
    "atomic steps": (lambda n: compositions.loop_atomic.start(n, "flat"), None),
    "all_of": (compositions.loop_all_of.start, None),
    "any_of": (compositions.loop_any_of.start, None),
    "timers": (compositions.loop_timers.start, None),
    "signals": (compositions.loop_signals.start, lambda run: run.signal("tick")),
    "updates": (compositions.loop_updates.start, lambda run: updates.send(run, "tick")),
    "children": (compositions.loop_children.start, None),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_cost_of_a_request_stays_flat_over_200_iterations(shape):
    start, nudge = SHAPES[shape]
    short, long = measure(start, 20, nudge), measure(start, 200, nudge)
    assert long.replays == short.replays == 1, f"{shape}: the run was replayed ({short.replays}, {long.replays})"
    per_short, per_long = short.queries / 20, long.queries / 200
    assert per_long <= per_short * 1.05 + 0.5, (
        f"{shape}: {per_short:.1f} queries per iteration at 20, {per_long:.1f} at 200"
    )
