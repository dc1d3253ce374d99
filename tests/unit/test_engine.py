"""The replay interpreter on its own: no database, no Celery, no clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.core import codec, engine
from durable_django.core.engine import CANCELLED, Decision, Note, Open, Recorded, Settle, Succeeded
from durable_django.core.interpreter import ErrorInfo, Interpreter
from durable_django.core.requests import AllOf, AnyOf, ChildCall, SetState, StepCall, encode_arguments


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


@durable.workflow(name="unit.fan_out")
def fan_out():
    a, b = yield durable.all_of(add(1, 1), add(2, 2))
    return a + b


@durable.workflow(name="unit.race")
def race():
    index, value = yield durable.any_of(fetch("a"), durable.sleep(timedelta(seconds=5)))
    return [index, value]


@durable.workflow(name="unit.waiter")
def waiter():
    payload = yield durable.wait_signal("go", timeout=timedelta(days=1))
    return payload


@durable.workflow(name="unit.child")
def child(n: int):
    return (yield add(n, n))


@durable.workflow(name="unit.parent")
def parent():
    try:
        return (yield child(3))
    except durable.ChildFailed as error:
        return f"child failed: {error.error_type}"


@durable.workflow(name="unit.versioned")
def versioned():
    if (yield durable.patched("v2")):
        return (yield add(1, 2))
    return (yield add(1, 1))


@durable.workflow(name="unit.stateful")
def stateful():
    yield durable.set_state({"stage": "adding"})
    total = yield add(1, 1)
    yield durable.set_state({"stage": "done"})
    return total


@durable.workflow(name="unit.looper")
def looper(n: int):
    yield durable.wait_signal("tick")
    yield durable.continue_as_new(n + 1)


@durable.workflow(name="unit.cancellable")
def cancellable():
    try:
        yield fetch("charge")
        yield durable.sleep(timedelta(days=30))
    except durable.Cancelled:
        yield fetch("refund")
        raise
    return "kept"


def call(step: str, *args, **kwargs) -> StepCall:
    return StepCall(step, encode_arguments(args, kwargs, step))


def done(value) -> Succeeded:
    return Succeeded(codec.encode(value))


def failed(kind="builtins.RuntimeError", message="boom") -> engine.Failed:
    return engine.Failed(ErrorInfo(type=kind, message=message))


def entry(request, outcome=None) -> Recorded:
    return Recorded(request.kind, request.name, request.args_json, outcome)


SLEEP_5 = durable.sleep(timedelta(seconds=5))
SLEEP_30D = durable.sleep(timedelta(days=30))
WAIT_GO = durable.wait_signal("go", timeout=timedelta(days=1))
FAN = AllOf((call("unit.add", 1, 1), call("unit.add", 2, 2)))
RACE = AnyOf((call("unit.fetch", "a"), SLEEP_5))
CHILD = ChildCall("unit.child", encode_arguments([3], {}, "child"))
STATE_ADDING = SetState(codec.encode({"stage": "adding"}))
STATE_DONE = SetState(codec.encode({"stage": "done"}))
PATCH = durable.patched("v2")


def replay(workflow, args, history, *, cancel=False):
    interpreter = Interpreter(workflow.name, workflow.func, list(args), {})
    return engine.decide(interpreter, dict(enumerate(history)), cancel=cancel), interpreter


CASES = {
    "empty history opens the first step": (
        sum_three,
        [5],
        [],
        Decision((Open(0, call("unit.add", 5, 1)),), waiting=(0,)),
    ),
    "a pending step waits": (
        sum_three,
        [5],
        [entry(call("unit.add", 5, 1))],
        Decision(waiting=(0,)),
    ),
    "a recorded result feeds the next request": (
        sum_three,
        [5],
        [entry(call("unit.add", 5, 1), done(6))],
        Decision((Open(1, call("unit.add", 6, 2)),), waiting=(1,)),
    ),
    "a full history completes with the return value": (
        sum_three,
        [5],
        [entry(call("unit.add", 5, 1), done(6)), entry(call("unit.add", 6, 2), done(8))],
        Decision(end=engine.Complete("80")),
    ),
    "a failed step is raised at the yield and can be caught": (
        saga,
        [7],
        [entry(call("unit.fetch", "charge-7"), failed())],
        Decision((Open(1, call("unit.fetch", "refund-7-builtins.RuntimeError")),), waiting=(1,)),
    ),
    "all_of opens a group entry and one entry per leaf": (
        fan_out,
        [],
        [],
        Decision((Open(0, FAN), Open(1, FAN.requests[0], 0), Open(2, FAN.requests[1], 0)), waiting=(1, 2)),
    ),
    "all_of waits while a leaf is pending": (
        fan_out,
        [],
        [entry(FAN), entry(FAN.requests[0], done(2)), entry(FAN.requests[1])],
        Decision(waiting=(2,)),
    ),
    "all_of resolves once every leaf succeeded, and records that": (
        fan_out,
        [],
        [entry(FAN), entry(FAN.requests[0], done(2)), entry(FAN.requests[1], done(4))],
        Decision((Settle(0, Succeeded("null")),), end=engine.Complete("6")),
    ),
    "all_of fails on a failed leaf and cancels the pending ones": (
        fan_out,
        [],
        [entry(FAN), entry(FAN.requests[0]), entry(FAN.requests[1], failed())],
        Decision((Settle(1, CANCELLED), Settle(0, Succeeded("1"))), end=engine.Fail(ErrorInfo("x", "x"))),
    ),
    "any_of takes the first finished leaf and cancels the rest": (
        race,
        [],
        [entry(RACE), entry(RACE.requests[0]), entry(RACE.requests[1], done(None))],
        Decision((Settle(1, CANCELLED), Settle(0, Succeeded("1"))), end=engine.Complete("[1,null]")),
    ),
    "any_of replays its recorded winner even if another leaf also finished": (
        race,
        [],
        [entry(RACE, done(0)), entry(RACE.requests[0], done({"key": "a"})), entry(RACE.requests[1], done(None))],
        Decision(end=engine.Complete('[0,{"key":"a"}]')),
    ),
    "a signal wait with a timeout is one entry": (
        waiter,
        [],
        [],
        Decision((Open(0, WAIT_GO),), waiting=(0,)),
    ),
    "a received signal's payload comes back from the yield": (
        waiter,
        [],
        [entry(WAIT_GO, done({"carrier": "UPS"}))],
        Decision(end=engine.Complete('{"carrier":"UPS"}')),
    ),
    "a timed-out signal wait returns None": (
        waiter,
        [],
        [entry(WAIT_GO, done(None))],
        Decision(end=engine.Complete("null")),
    ),
    "a child workflow is a request": (
        parent,
        [],
        [],
        Decision((Open(0, CHILD),), waiting=(0,)),
    ),
    "a failed child raises ChildFailed in the parent": (
        parent,
        [],
        [entry(CHILD, failed("builtins.ValueError"))],
        Decision(end=engine.Complete('"child failed: builtins.ValueError"')),
    ),
    "a new run takes the patched branch and records a marker": (
        versioned,
        [],
        [],
        Decision((Note(0, PATCH, Succeeded("true")), Open(1, call("unit.add", 1, 2))), waiting=(1,)),
    ),
    "a run recorded before the patch replays the old branch": (
        versioned,
        [],
        [entry(call("unit.add", 1, 1), done(2))],
        Decision(end=engine.Complete("2")),
    ),
    "a run recorded after the patch replays the new branch": (
        versioned,
        [],
        [entry(PATCH, done(True)), entry(call("unit.add", 1, 2), done(3))],
        Decision(end=engine.Complete("3")),
    ),
    "set_state is noted at once and the workflow goes on": (
        stateful,
        [],
        [],
        Decision((Note(0, STATE_ADDING, Succeeded("null")), Open(1, call("unit.add", 1, 1))), waiting=(1,)),
    ),
    "continue_as_new ends the history with the new arguments": (
        looper,
        [4],
        [entry(durable.wait_signal("tick"), done("t"))],
        Decision(end=engine.Restart('{"args":[5],"kwargs":{}}')),
    ),
}


@pytest.mark.parametrize("workflow,args,history,expected", CASES.values(), ids=CASES.keys())
def test_replay_decides(workflow, args, history, expected):
    decision, _ = replay(workflow, args, history)
    if isinstance(expected.end, engine.Fail):  # errors carry tracebacks: compare their type only
        assert isinstance(decision.end, engine.Fail)
        decision = Decision(decision.commands, expected.end, decision.waiting, decision.cancel_delivered)
    assert decision == expected


CANCEL_CASES = {
    "during a step: the step is cancelled and compensation runs": (
        [entry(call("unit.fetch", "charge"))],
        Decision((Settle(0, CANCELLED), Open(1, call("unit.fetch", "refund"))), waiting=(1,), cancel_delivered=True),
    ),
    "during a sleep: the timer is cancelled": (
        [entry(call("unit.fetch", "charge"), done({})), entry(SLEEP_30D)],
        Decision((Settle(1, CANCELLED), Open(2, call("unit.fetch", "refund"))), waiting=(2,), cancel_delivered=True),
    ),
    "before anything started: the first request is noted as cancelled": (
        [],
        Decision(
            (Note(0, call("unit.fetch", "charge"), CANCELLED), Open(1, call("unit.fetch", "refund"))),
            waiting=(1,),
            cancel_delivered=True,
        ),
    ),
    "after compensation: Cancelled escapes and the run ends cancelled": (
        [entry(call("unit.fetch", "charge"), CANCELLED), entry(call("unit.fetch", "refund"), done({}))],
        Decision(end=engine.Fail(ErrorInfo("x", "x"), cancelled=True)),
    ),
}


@pytest.mark.parametrize("history,expected", CANCEL_CASES.values(), ids=CANCEL_CASES.keys())
def test_cancel_raises_cancelled_at_the_current_yield(history, expected):
    decision, _ = replay(cancellable, [], history, cancel=True)
    if isinstance(expected.end, engine.Fail):
        assert isinstance(decision.end, engine.Fail) and decision.end.cancelled
        assert decision.end.error.type == "durable_django.exceptions.Cancelled"
        return
    assert decision == expected


def test_a_recorded_cancellation_replays_the_same_way_without_a_cancel_request():
    history = [entry(call("unit.fetch", "charge"), CANCELLED)]
    decision, _ = replay(cancellable, [], history)
    assert decision == Decision((Open(1, call("unit.fetch", "refund")),), waiting=(1,))


def test_cancelling_a_group_cancels_every_pending_leaf():
    history = [entry(FAN), entry(FAN.requests[0], done(2)), entry(FAN.requests[1])]
    decision, _ = replay(fan_out, [], history, cancel=True)
    assert decision.commands == (Settle(2, CANCELLED), Settle(0, CANCELLED))
    assert isinstance(decision.end, engine.Fail) and decision.end.cancelled


def test_an_uncaught_step_failure_fails_the_run_with_the_error():
    @durable.workflow(name="unit.uncaught")
    def uncaught():
        yield fetch("x")

    decision, _ = replay(uncaught, [], [entry(call("unit.fetch", "x"), failed("payments.Declined", "card declined"))])
    assert isinstance(decision.end, engine.Fail)
    assert decision.end.error.type == "durable_django.exceptions.StepFailed"
    assert "payments.Declined: card declined" in decision.end.error.message
    assert "Traceback" in decision.end.error.traceback


DIVERGENCES = {
    "another step name": (sum_three, [entry(call("unit.fetch", 5, 1), done(6))], 0, "step unit.fetch"),
    "other arguments": (sum_three, [entry(call("unit.add", 5, 2), done(6))], 0, '{"args":[5,2]'),
    "keyword instead of positional": (sum_three, [entry(call("unit.add", 5, b=1), done(6))], 0, '"kwargs":{"b":1}'),
    "a sleep where a step was": (sum_three, [entry(SLEEP_5, done(None))], 0, 'sleep({"seconds":5.0})'),
    "another sleep duration": (race, [entry(RACE), entry(RACE.requests[0]), entry(SLEEP_30D)], 2, "sleep("),
    "a group of another size": (fan_out, [entry(AllOf((call("unit.add", 1, 1),)))], 0, "all_of(1)"),
    "any_of where all_of was": (fan_out, [entry(AnyOf(FAN.requests))], 0, "any_of(2)"),
    "a later position": (
        sum_three,
        [entry(call("unit.add", 5, 1), done(6)), entry(call("unit.add", 6, 3), done(9))],
        1,
        "[6,3]",
    ),
}


@pytest.mark.parametrize("workflow,history,seq,recorded_side", DIVERGENCES.values(), ids=DIVERGENCES.keys())
def test_a_yield_that_differs_from_history_blocks_and_shows_both_sides(workflow, history, seq, recorded_side):
    decision, _ = replay(workflow, [5] if workflow is sum_three else [], history)
    assert isinstance(decision.end, engine.Block), decision
    assert decision.end.seq == seq
    assert decision.commands == ()
    assert recorded_side in decision.end.message
    assert "but the code now yields" in decision.end.message
    assert "durable.patched()" in decision.end.message


def test_a_cached_interpreter_fed_only_what_is_new_matches_a_full_replay():
    live = Interpreter(fan_out.name, fan_out.func, [], {})
    opened = engine.decide(live, {})
    history = {0: entry(FAN), 1: entry(FAN.requests[0]), 2: entry(FAN.requests[1])}
    assert engine.decide(live, history) == Decision(waiting=(1, 2))
    history[1] = entry(FAN.requests[0], done(2))
    assert engine.decide(live, history) == Decision(waiting=(2,))
    history[2] = entry(FAN.requests[1], done(4))
    incremental = engine.decide(live, history)
    full, _ = replay(fan_out, [], [history[0], history[1], history[2]])
    assert opened.waiting == (1, 2)
    assert incremental == full == Decision((Settle(0, Succeeded("null")),), end=engine.Complete("6"))


def test_the_first_run_sees_decoded_values_like_a_replay():
    seen = []

    @durable.workflow(name="unit.sees")
    def sees():
        value = yield fetch("k")
        seen.append(value)

    replay(sees, [], [entry(call("unit.fetch", "k"), done((1, 2)))])
    assert seen == [[1, 2]]


def test_local_variables_are_read_where_the_generator_waits():
    _, interpreter = replay(sum_three, [5], [entry(call("unit.add", 5, 1), done(6))])
    assert interpreter.local_variables() == {"x": 5, "first": 6}


INVALID_YIELDS = {
    "a dict": ({"step": "x"}, "yielded builtins.dict at position #0"),
    "None": (None, "yielded builtins.NoneType"),
    "the step function itself": (add, "call it: yield add(...)"),
    "a workflow function itself": (child, "call it: yield child(...)"),
}


@pytest.mark.parametrize("value,message", INVALID_YIELDS.values(), ids=INVALID_YIELDS.keys())
def test_yielding_something_that_is_not_a_request_fails_with_a_clear_error(value, message):
    @durable.workflow(name=f"unit.bad_yield_{id(value)}")
    def bad():
        yield value

    decision, _ = replay(bad, [], [])
    assert isinstance(decision.end, engine.Fail)
    assert decision.end.error.type == "durable_django.exceptions.InvalidYield"
    assert message in decision.end.error.message


def test_a_non_json_return_value_fails_with_the_path():
    @durable.workflow(name="unit.bad_return")
    def bad_return():
        yield fetch("k")
        return {"when": {1, 2}}

    decision, _ = replay(bad_return, [], [entry(call("unit.fetch", "k"), done({}))])
    assert isinstance(decision.end, engine.Fail)
    assert "the return value of workflow 'unit.bad_return'['when'] is a builtins.set" in decision.end.error.message


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

    interpreter = Interpreter(finally_calls_step.name, finally_calls_step.func, [], {})
    del interpreter
    assert calls == []


def test_a_step_called_outside_a_workflow_is_a_plain_function_call():
    assert add(2, 3) == 5


def test_code_that_ends_before_its_history_does_is_non_determinism():
    history = [entry(call("unit.add", 5, 1), done(6)), entry(call("unit.add", 6, 2), done(8)), entry(SLEEP_5)]
    decision, _ = replay(sum_three, [5], history)
    assert isinstance(decision.end, engine.Block)
    assert decision.end.seq == 2
    assert 'history recorded sleep({"seconds":5.0}) but the code now ends there' in decision.end.message
