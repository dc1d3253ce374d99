"""The replay interpreter on its own: no database, no Celery, no clock."""

from __future__ import annotations

import pytest

import durable_django as durable
from durable_django import codec, engine
from durable_django.requests import StepCall


@durable.step(name="unit.add")
def add(a: int, b: int) -> int:
    return a + b


@durable.step(name="unit.fetch")
def fetch(key: str) -> dict:
    return {"key": key}


@durable.workflow(name="unit.sum_three")
def sum_three(x: int):
    first = yield add(x, 1)
    second = yield add(first, 2)
    return second * 10


@durable.workflow(name="unit.saga")
def saga(order: int):
    try:
        charge = yield fetch(f"charge-{order}")
    except durable.StepFailed as error:
        yield fetch(f"refund-{order}-{error.error_type}")
        return "compensated"
    return charge["key"]


def call(step: str, *args, **kwargs) -> StepCall:
    return StepCall(step, codec.encode({"args": list(args), "kwargs": kwargs}))


def done(value) -> engine.Succeeded:
    return engine.Succeeded(codec.encode(value))


def failed(kind="builtins.RuntimeError", message="boom") -> engine.Failed:
    return engine.Failed(engine.ErrorInfo(type=kind, message=message))


def entry(request: StepCall, outcome=None) -> engine.Recorded:
    return engine.Recorded(request.kind, request.step, request.args_json, outcome)


def replay(workflow, args, history):
    interpreter = engine.Interpreter(workflow.name, workflow.func, list(args), {})
    return engine.decide(interpreter, dict(enumerate(history))), interpreter


CASES = {
    "empty history schedules the first step": (
        sum_three,
        [5],
        [],
        engine.Schedule(0, call("unit.add", 5, 1)),
    ),
    "a pending step waits": (
        sum_three,
        [5],
        [entry(call("unit.add", 5, 1))],
        engine.Wait(0),
    ),
    "a recorded result feeds the next request": (
        sum_three,
        [5],
        [entry(call("unit.add", 5, 1), done(6))],
        engine.Schedule(1, call("unit.add", 6, 2)),
    ),
    "a full history completes with the return value": (
        sum_three,
        [5],
        [entry(call("unit.add", 5, 1), done(6)), entry(call("unit.add", 6, 2), done(8))],
        engine.Complete("80"),
    ),
    "a failed step is raised at the yield and can be caught": (
        saga,
        [7],
        [entry(call("unit.fetch", "charge-7"), failed())],
        engine.Schedule(1, call("unit.fetch", "refund-7-builtins.RuntimeError")),
    ),
    "compensation completes the saga": (
        saga,
        [7],
        [
            entry(call("unit.fetch", "charge-7"), failed()),
            entry(call("unit.fetch", "refund-7-builtins.RuntimeError"), done({})),
        ],
        engine.Complete('"compensated"'),
    ),
}


@pytest.mark.parametrize("workflow,args,history,expected", CASES.values(), ids=CASES.keys())
def test_replay_decides(workflow, args, history, expected):
    decision, _ = replay(workflow, args, history)
    assert decision == expected


def test_an_uncaught_step_failure_fails_the_run_with_the_error():
    @durable.workflow(name="unit.uncaught")
    def uncaught():
        yield fetch("x")

    decision, _ = replay(uncaught, [], [entry(call("unit.fetch", "x"), failed("payments.Declined", "card declined"))])
    assert isinstance(decision, engine.Fail)
    assert decision.error.type == "durable_django.exceptions.StepFailed"
    assert "payments.Declined: card declined" in decision.error.message
    assert "Traceback" in decision.error.traceback


DIVERGENCES = {
    "another step name": call("unit.fetch", 5, 1),
    "other arguments": call("unit.add", 5, 2),
    "keyword instead of positional": call("unit.add", 5, b=1),
}


@pytest.mark.parametrize("recorded", DIVERGENCES.values(), ids=DIVERGENCES.keys())
def test_a_yield_that_differs_from_history_blocks_and_shows_both_sides(recorded):
    decision, _ = replay(sum_three, [5], [entry(recorded, done(6))])
    assert isinstance(decision, engine.Block)
    assert decision.seq == 0
    assert recorded.describe() in decision.message
    assert call("unit.add", 5, 1).describe() in decision.message


def test_a_divergence_later_in_history_is_found_at_its_position():
    history = [entry(call("unit.add", 5, 1), done(6)), entry(call("unit.add", 6, 3), done(9))]
    decision, _ = replay(sum_three, [5], history)
    assert isinstance(decision, engine.Block) and decision.seq == 1


def test_a_cached_interpreter_fed_one_outcome_matches_a_full_replay():
    live = engine.Interpreter(sum_three.name, sum_three.func, [5], {})
    first = engine.decide(live, {})
    second = engine.decide(live, {0: entry(first.request, done(6))})
    third = engine.decide(live, {1: entry(second.request, done(8))})
    full, _ = replay(sum_three, [5], [entry(first.request, done(6)), entry(second.request, done(8))])
    assert third == full == engine.Complete("80")


def test_the_first_run_sees_decoded_values_like_a_replay():
    seen = []

    @durable.workflow(name="unit.sees")
    def sees():
        value = yield fetch("k")
        seen.append(value)

    replay(sees, [], [entry(call("unit.fetch", "k"), done((1, 2)))])
    assert seen == [[1, 2]]


INVALID_YIELDS = {
    "a dict": ({"step": "x"}, "yielded builtins.dict at step #0"),
    "None": (None, "yielded builtins.NoneType"),
    "the step function itself": (add, "call the step: yield add(...)"),
}


@pytest.mark.parametrize("value,message", INVALID_YIELDS.values(), ids=INVALID_YIELDS.keys())
def test_yielding_something_that_is_not_a_request_fails_with_a_clear_error(value, message):
    @durable.workflow(name=f"unit.bad_yield_{id(value)}")
    def bad():
        yield value

    decision, _ = replay(bad, [], [])
    assert isinstance(decision, engine.Fail)
    assert decision.error.type == "durable_django.InvalidYield"
    assert message in decision.error.message


def test_a_non_json_return_value_fails_with_the_path():
    @durable.workflow(name="unit.bad_return")
    def bad_return():
        yield fetch("k")
        return {"when": {1, 2}}

    decision, _ = replay(bad_return, [], [entry(call("unit.fetch", "k"), done({}))])
    assert isinstance(decision, engine.Fail)
    assert "the return value of workflow 'unit.bad_return'['when'] is a builtins.set" in decision.error.message


def test_closing_a_discarded_generator_never_runs_a_step_for_real():
    calls = []

    @durable.step(name="unit.side_effect")
    def side_effect() -> None:
        calls.append("ran")

    @durable.workflow(name="unit.finally_calls_step")
    def finally_calls_step():
        try:
            yield fetch("k")
        finally:
            side_effect()

    interpreter = engine.Interpreter(finally_calls_step.name, finally_calls_step.func, [], {})
    del interpreter
    assert calls == []


def test_a_step_called_outside_a_workflow_is_a_plain_function_call():
    assert add(2, 3) == 5
