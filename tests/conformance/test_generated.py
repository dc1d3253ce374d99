"""Guarantee 9: generated programs and event schedules, run in-process, agree with the reference model.

Each example draws a program over the whole request vocabulary and a schedule of events
(signals, bursts of signals, updates, cancels, time passing, loss of the generator cache), asks the
model what must happen, runs it for real with ``durable_django.testing`` (one event, then
``run_until_idle()``), and compares every run's status, result or error, published state,
generation and unconsumed signals and updates, what each yield returned (``workflow_info()``
included), which step attempts ran, which atomic writes committed, and what each update's
caller gets. Hypothesis shrinks a disagreement to a minimal program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from .compare import differences, report
from .inline import ROOT, run_inline
from .known_bugs import known
from .model import Event, predict
from .program import Program
from .schedule import case

T = TypeVar("T")
EXAMPLES = 400
#: continue_as_new_suggested turns true this early here, so programs read it both ways (docs default: 10,000).
SUGGESTED_AFTER = 6


class _Draws:
    """The generator's choices, drawn by Hypothesis so that it can shrink them."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return int(self.draw(st.integers(low, high)))

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self.draw(st.integers(0, len(options) - 1)))]


@st.composite
def cases(draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[Program, list[Event]]:
    return case(_Draws(draw), late=True)


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@given(cases())
def test_generated_programs_agree_with_the_model(generated: tuple[Program, list[Event]]) -> None:
    _commit_without_waiting_for_the_disk()
    program, events = generated
    expected = predict(program, events, ROOT, suggest_after=SUGGESTED_AFTER)
    assume(expected.ambiguous is None)
    assume(not known(expected.shapes))
    with override_settings(DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER=SUGGESTED_AFTER):
        actual = run_inline(program, events)
    problems = differences(expected, actual)
    assert not problems, report(program, events, problems)


def _commit_without_waiting_for_the_disk() -> None:
    """Hundreds of runs commit thousands of transactions; what a crash of PostgreSQL would lose is not under test."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
