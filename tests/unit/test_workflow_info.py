"""workflow_info(), now() and uuid4() in the replay core: the same on every replay, refused outside workflows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

import durable_django as durable
from durable_django.core import codec, engine
from durable_django.core.engine import Decision, Note, Open, Recorded, Succeeded
from durable_django.core.info import RunFacts
from durable_django.core.interpreter import Interpreter
from durable_django.core.requests import StepCall, encode_arguments

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@durable.step(name="unit_info.note")
def note(value: object) -> object:
    return value


@durable.workflow(name="unit_info.reader")
def reader():
    info = durable.workflow_info()
    first = (durable.now(), durable.now(), durable.uuid4(), durable.uuid4())
    yield note([info.position, info.workflow_id, info.generation, info.parent_workflow_id])
    later = durable.workflow_info()
    return {
        "first": [first[0].isoformat(), first[1].isoformat(), str(first[2]), str(first[3])],
        "second": [durable.now().isoformat(), str(durable.uuid4())],
        "position": later.position,
        "length": later.history_length,
        "suggested": later.continue_as_new_suggested,
    }


FACTS = RunFacts(
    workflow_id="reader-1", run_id=str(uuid.UUID(int=7)), workflow_name="unit_info.reader", suggest_after=1
)


def interpreter(workflow, *, times=None, clock=None):
    made = Interpreter(workflow.name, workflow.func, [], {})
    ticks = iter([T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=9)])
    made.reads.bind(
        lambda: FACTS,
        recorded_time=(times or {}).get,
        clock=clock or (lambda: next(ticks)),
    )
    return made


def step_entry(outcome=None) -> Recorded:
    request = StepCall("unit_info.note", encode_arguments([[0, "reader-1", 0, None]], {}, "x"))
    return Recorded(request.kind, request.name, request.args_json, outcome)


def test_live_reads_take_the_clock_once_per_position_and_leave_it_for_the_store_to_record():
    live = interpreter(reader)
    decision = engine.decide(live, {})
    assert decision.commands[0] == Open(0, StepCall("unit_info.note", step_entry().args_json))
    assert live.reads.unwritten == {0: T0}  # one read of the clock for two calls at position 0


def test_a_replay_reads_the_recorded_times_and_derives_the_same_ids():
    live = interpreter(reader)
    engine.decide(live, {})
    history = {0: step_entry(Succeeded("null"))}
    live_end = engine.decide(live, history).end
    times = {0: T0, 1: T0 + timedelta(seconds=5)}
    replayed = interpreter(reader, times=times, clock=lambda: pytest.fail("a replay must not read the clock"))
    replay_end = engine.decide(replayed, history).end
    assert isinstance(live_end, engine.Complete)
    result = codec.decode(live_end.result_json)
    assert result["first"][0] == result["first"][1] == T0.isoformat()
    assert result["first"][2] != result["first"][3]
    assert uuid.UUID(result["first"][2]).version == 4
    assert result["second"][0] == (T0 + timedelta(seconds=5)).isoformat()
    assert (result["position"], result["length"], result["suggested"]) == (1, 1, True)
    assert live.reads.unwritten == {0: T0, 1: T0 + timedelta(seconds=5)}
    # Replayed with the time the store recorded at position 1 (the entry the end would have written).
    assert replay_end == live_end


def test_ids_differ_between_runs_and_generations():
    def first_id(facts: RunFacts) -> str:
        made = Interpreter(reader.name, reader.func, [], {})
        made.reads.bind(lambda: facts, recorded_time={}.get, clock=lambda: T0)
        engine.decide(made, {})
        return str(made.reads.uuid4(0))

    other_run = RunFacts(workflow_id="reader-2", run_id=str(uuid.UUID(int=8)), workflow_name="unit_info.reader")
    next_generation = RunFacts(
        workflow_id="reader-1", run_id=FACTS.run_id, workflow_name="unit_info.reader", generation=1
    )
    assert len({first_id(FACTS), first_id(other_run), first_id(next_generation)}) == 3


@pytest.mark.parametrize("read", [durable.workflow_info, durable.now, durable.uuid4])
def test_reading_outside_workflow_code_says_where_it_may_be_called(read):
    with pytest.raises(durable.WorkflowContextUnavailable, match=r"outside workflow code; call it only inside"):
        read()


@durable.workflow(name="unit_info.deprecated")
def deprecated():
    yield durable.deprecate_patch("v2")
    return (yield note("new"))


NEW = StepCall("unit_info.note", encode_arguments(["new"], {}, "x"))
MARKER = durable.patched("v2")


def test_deprecate_patch_reads_past_a_recorded_marker():
    history = {0: Recorded(MARKER.kind, MARKER.name, MARKER.args_json, Succeeded("true"))}
    decision = engine.decide(Interpreter(deprecated.name, deprecated.func, [], {}), history)
    assert decision == Decision((Open(1, NEW),), waiting=(1,))


def test_deprecate_patch_records_nothing_for_a_new_run_and_replays_runs_without_the_marker():
    assert engine.decide(Interpreter(deprecated.name, deprecated.func, [], {}), {}) == Decision(
        (Open(0, NEW),), waiting=(0,)
    )
    history = {0: Recorded(NEW.kind, NEW.name, NEW.args_json, Succeeded('"new"'))}
    decision = engine.decide(Interpreter(deprecated.name, deprecated.func, [], {}), history)
    assert decision.end == engine.Complete('"new"')
    assert not any(isinstance(command, Note) for command in decision.commands)


def test_deprecate_patch_refuses_a_bad_change_id():
    with pytest.raises(durable.InvalidRequest, match="needs a change id"):
        durable.deprecate_patch("")


@durable.workflow(name="unit_info.tells_apart")
def tells_apart():
    try:
        yield note("work")
    except durable.DeadlineExceeded:
        return "deadline"
    except durable.Cancelled:
        return "cancel"


WORK = StepCall("unit_info.note", encode_arguments(["work"], {}, "x"))


@pytest.mark.parametrize("deadline,answer", [(True, "deadline"), (False, "cancel")])
def test_a_cancel_is_raised_as_deadline_exceeded_when_it_came_from_the_deadline_live_and_on_replay(deadline, answer):
    live = Interpreter(tells_apart.name, tells_apart.func, [], {})
    engine.decide(live, {})
    pending = {0: Recorded(WORK.kind, WORK.name, WORK.args_json)}
    assert engine.decide(live, pending, cancel=True, deadline=deadline).end == engine.Complete(f'"{answer}"')
    recorded = {0: Recorded(WORK.kind, WORK.name, WORK.args_json, engine.CANCELLED)}
    replayed = Interpreter(tells_apart.name, tells_apart.func, [], {})
    assert engine.decide(replayed, recorded, deadline=deadline).end == engine.Complete(f'"{answer}"')
