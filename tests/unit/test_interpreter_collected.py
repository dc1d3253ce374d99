"""A run's generator that the garbage collector finalizes is closed as workflow code."""

from __future__ import annotations

import contextvars
import gc

import durable_django as durable
from durable_django.core.interpreter import Interpreter

ran: list[int] = []


@durable.step(name="unit.cleanup_for_real")
def cleanup(order: int) -> None:
    ran.append(order)


def with_cleanup(order: int):
    try:
        yield cleanup(order)
    finally:
        yield cleanup(order)  # in a discarded generator: a request nobody executes, never a call


def test_a_generator_the_collector_finalizes_runs_its_finally_as_workflow_code():
    dropped = Interpreter("unit.with_cleanup", with_cleanup, [7], {})
    dropped.cycle = dropped  # type: ignore[attr-defined]  # only the collector frees it
    assert dropped.current is not None  # started: suspended at its first yield
    del dropped
    gc.collect()
    assert ran == [], "the step in the finally ran for real"


def test_collected_interpreters_leave_the_running_context_as_it_was():
    pads = [contextvars.ContextVar(f"unit_pad_{index}") for index in range(40)]
    for pad in pads:
        pad.set(index := object())
    for _ in range(2_000):  # finalized amid the ContextVar sets of the live ones
        dropped = Interpreter("unit.with_cleanup", with_cleanup, [1], {})
        dropped.cycle = dropped  # type: ignore[attr-defined]
        assert dropped.current is not None
        live = Interpreter("unit.with_cleanup", with_cleanup, [2], {})
        assert live.current is not None
        live.close()
        del dropped, live
    gc.collect()
    assert pads[-1].get() is index and ran == []
