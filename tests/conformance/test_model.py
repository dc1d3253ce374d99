"""The reference model on its own (no database): each settled rule of issue 10, as the model reads it.

These pin the model to the contract, so that a change to the model that bends a rule
shows here, not as a puzzling disagreement with the engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import build as b
from .lost import lost_attempts
from .model import Prediction, predict

HOUR = 3600


@pytest.fixture(autouse=True)
def _fresh_ids() -> None:
    b.fresh()


def values(prediction: Prediction, scope: str = "R") -> list[Any]:
    return [outcome for _, _, outcome in prediction.traces[scope]]


def test_a_losing_wait_takes_no_signal_and_the_lowest_index_wins() -> None:
    program = b.program(b.sleep(HOUR), b.any_of(b.wait("a"), b.wait("b")), b.wait("b"))
    prediction = predict(program, [b.signals(("b", 1), ("a", 2)), b.time(2 * HOUR)], "R")
    assert values(prediction)[1:] == [["value", [0, 2]], ["value", 1]]
    assert prediction.runs["R"]["status"] == "completed"


def test_a_step_opened_beside_a_buffered_signal_that_settles_the_any_of_never_runs() -> None:
    program = b.program(b.sleep(HOUR), b.any_of(b.wait("a"), b.step("ok")))
    prediction = predict(program, [b.signals(("a", 1)), b.time(2 * HOUR)], "R")
    assert prediction.attempts == {}


def test_a_cancel_while_a_step_runs_records_its_outcome_starts_no_attempt_and_raises_at_its_yield() -> None:
    program = b.program(b.finally_([b.step("cancels", "flaky", 1)], [b.step("ok")]))
    prediction = predict(program, [], "R")
    assert values(prediction) == [["raise", "Cancelled"], ["value", "R.0:2#0@1"]]
    assert prediction.attempts == {"R.0:1#0": [1], "R.0:2#0": [1]}
    assert (prediction.runs["R"]["status"], prediction.runs["R"]["error"]) == ("cancelled", "Cancelled")


def test_a_step_waiting_in_backoff_is_cancelled_at_once() -> None:
    program = b.program(b.step("flaky", 1, policy="slow"))
    prediction = predict(program, [b.cancel(), b.time(10 * HOUR)], "R")
    assert prediction.attempts == {"R.0:1#0": [1]}
    assert prediction.runs["R"]["status"] == "cancelled"


def test_a_second_cancel_changes_nothing_and_compensation_runs() -> None:
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.wait("b"), b.step("ok")], reraise=True))
    prediction = predict(program, [b.cancel(), b.cancel(), b.signals(("b", 1))], "R")
    assert values(prediction) == [["raise", "Cancelled"], ["value", 1], ["value", "R.0:3#0@1"]]
    assert prediction.runs["R"]["status"] == "cancelled"


def test_cancelling_a_parent_cancels_its_child_which_compensates() -> None:
    child = b.program(b.try_([b.wait("never")], ["Cancelled"], [b.step("ok")], reraise=True))
    program = b.program(b.child(child))
    prediction = predict(program, [b.cancel()], "R")
    assert prediction.runs["R"]["status"] == "cancelled"
    assert prediction.runs["R.0:4#0"]["status"] == "cancelled"
    assert prediction.attempts == {"R.0:4#0.0:2#0": [1]}


def test_continue_as_new_keeps_unconsumed_signals_and_does_not_raise_a_delivered_cancel_again() -> None:
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.continue_as_new()]), max_gen=1)
    prediction = predict(program, [b.signals(("z", 1)), b.cancel()], "R")
    assert prediction.runs["R"] | {"result": None} == {
        "status": "waiting",
        "result": None,
        "error": None,
        "state": None,
        "gen": 1,
        "inbox": [["z", 1]],
        "updates": [],
    }


def test_a_timeout_that_comes_due_with_its_signal_in_the_inbox_takes_the_signal() -> None:
    program = b.program(b.wait("a", timeout=HOUR))
    prediction = predict(program, [b.signals(("a", 1), late=2 * HOUR)], "R")
    assert values(prediction) == [["value", 1]]


def test_timers_that_fall_within_the_margin_of_each_other_are_too_close_to_call() -> None:
    program = b.program(b.any_of(b.sleep(HOUR), b.sleep(HOUR + 60)))
    assert predict(program, [b.time(2 * HOUR)], "R").ambiguous


def test_attempts_lost_to_kills_count_and_the_next_one_comes_at_once() -> None:
    program = b.program(b.step("ok", policy="slow"))
    prediction = predict(program, [], "R", lost={("R.0:1#0", 1): True})
    assert prediction.attempts == {"R.0:1#0": [1, 2]}
    once = b.program(b.step("ok", policy="once"))
    assert predict(once, [], "R", lost={("R.0:2#0", 1): False}).runs["R"]["error"] == "StepFailed"


def test_lost_attempts_are_read_from_the_journal() -> None:
    program = b.program(b.step("flaky", 1, policy="slow"))
    tag = "R.0:1#0"

    def attempt(epoch: int, number: int, phase: str, ok: bool = False) -> tuple[int, dict[str, Any]]:
        record = {"t": "attempt", "tag": tag, "n": number, "phase": phase, "policy": "slow", "ok": ok, "fatal": False}
        return epoch, record

    # Attempt 1 failed and its retry came after time passed (epoch 2): nothing lost.
    normal = [attempt(1, 1, "start"), attempt(1, 1, "end"), attempt(2, 2, "start"), attempt(2, 2, "end", ok=True)]
    assert lost_attempts(normal, program) == {}
    # The retry came in the same epoch: the failure was never recorded (its worker died).
    assert lost_attempts([*normal[:2], attempt(1, 2, "start"), attempt(1, 2, "end", True)], program) == {(tag, 1): True}
    # Attempt 1 never started its body, attempt 2 did: 1 was lost before its body ran.
    assert lost_attempts([attempt(1, 2, "start"), attempt(1, 2, "end", ok=True)], program) == {(tag, 1): False}
    # Attempt 1 ended well, 2 never started its body, 3 ran: 1's result was lost, then 2 before its body.
    ran_twice = [attempt(1, 1, "start"), attempt(1, 1, "end", True), attempt(1, 3, "start"), attempt(1, 3, "end", True)]
    assert lost_attempts(ran_twice, program) == {(tag, 1): True, (tag, 2): False}


def test_workflow_info_counts_a_position_per_request_and_one_per_leaf_of_a_group() -> None:
    program = b.program(
        b.info(), b.step("ok"), b.all_of(b.step("ok"), b.sleep(60)), b.state(), b.info(), b.continue_as_new(), max_gen=1
    )
    prediction = predict(program, [b.time(HOUR)], "R")
    infos = [outcome for _, _, outcome in prediction.traces["R"] if outcome[0] == "info"]
    # [position, history_length, generation, workflow_id, parent's, continue_as_new_suggested]
    assert [info[1] for info in infos] == [
        [0, 0, 0, "~", None, False],
        [5, 5, 0, "~", None, False],
        [0, 0, 1, "~", None, False],
        [5, 5, 1, "~", None, False],
    ]
    child = b.program(b.child(b.program(b.info())), b.continue_as_new(), max_gen=1)
    prediction = predict(child, [], "R", suggest_after=1)
    infos = [
        outcome[1]
        for scope, trace in sorted(prediction.traces.items())
        for _, _, outcome in trace
        if outcome[0] == "info"
    ]
    assert infos == [[0, 0, 0, "~/0", "~", False], [0, 0, 0, "~/1.0", "~", False]]


def test_an_update_is_taken_by_its_wait_answered_later_and_a_retried_id_sends_nothing() -> None:
    wait = b.wait_update("u")
    program = b.program(wait, b.state(), b.reply(wait), b.wait_update("u", timeout=HOUR, default="none"))
    events = [b.update("u", 7, "u1"), b.update("u", 7, "u1"), b.time(2 * HOUR), b.update("u", 8, "u2")]
    prediction = predict(program, events, "R")
    assert values(prediction) == [
        ["value", ["update", "u1", "u", 7]],
        ["value", None],
        ["value", None],
        ["value", "none"],
    ]
    assert prediction.replies == ["ok", "ok", "ok", "finished"]
    assert prediction.updates == {"u1": ["reply", "reply R|0|2"], "u2": ["refused"]}


def test_an_update_taken_and_not_answered_when_its_run_ends_leaves_its_caller_with_run_finished() -> None:
    program = b.program(b.wait_update("u"), b.wait("a"))
    events = [b.update("u", 1, "u1"), b.update("u", 2, "u2"), b.cancel()]
    prediction = predict(program, events, "R")
    assert prediction.updates == {"u1": ["finished"], "u2": ["finished"]}
    assert prediction.runs["R"]["updates"] == [["u", 2]]


def test_the_validator_refuses_before_anything_is_sent_and_reads_the_published_state() -> None:
    program = b.program(b.wait("a"), b.state(), b.wait_update("v"), b.wait_update("v"))
    events = [b.update("v", 3, "u1"), b.signals(("a", 1)), b.update("v", 3, "u2"), b.update("v", 4, "u3")]
    prediction = predict(program, events, "R")
    assert prediction.replies == ["ok", "ok", "rejected:v 3 refused once a state is published", "ok"]
    assert prediction.updates == {"u1": ["finished"], "u2": ["refused"], "u3": ["finished"]}


def test_continue_as_new_rejects_a_taken_unanswered_update_and_keeps_the_rest_in_the_inbox() -> None:
    program = b.program(b.wait_update("u"), b.wait("a"), b.continue_as_new(), max_gen=1)
    events = [b.update("u", 1, "u1"), b.update("u", 2, "u2"), b.signals(("a", 1))]
    prediction = predict(program, events, "R")
    assert prediction.updates == {"u1": ["rejected", "continued as new"], "u2": ["pending"]}


def test_the_deadline_raises_deadline_exceeded_at_the_current_yield_and_compensation_runs() -> None:
    program = b.program(b.try_([b.wait("a")], ["DeadlineExceeded"], [b.step("ok")], reraise=True), timeout=HOUR)
    prediction = predict(program, [b.time(2 * HOUR)], "R")
    assert values(prediction) == [["raise", "DeadlineExceeded"], ["value", "R.0:2#0@1"]]
    assert (prediction.runs["R"]["status"], prediction.runs["R"]["error"]) == ("cancelled", "DeadlineExceeded")


def test_a_cancel_before_the_deadline_is_the_reason_and_a_passed_deadline_is_not_inherited() -> None:
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.sleep(3 * HOUR)]), timeout=2 * HOUR)
    prediction = predict(program, [b.cancel(), b.time(4 * HOUR)], "R")
    assert values(prediction) == [["raise", "Cancelled"], ["value", None]]
    assert prediction.runs["R"]["status"] == "completed"
    # The child the compensation starts after the deadline runs normally, under its own timeout only.
    late_child = b.program(b.wait("b"))
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.child(late_child, timeout=10 * HOUR)]), timeout=HOUR)
    prediction = predict(program, [b.time(2 * HOUR)], "R")
    child = next(scope for scope in prediction.runs if scope != "R")
    assert prediction.runs[child]["status"] == "waiting" and prediction.runs[child]["error"] is None
    prediction = predict(program, [b.time(2 * HOUR), b.time(10 * HOUR)], "R")
    assert prediction.runs[child]["error"] == "DeadlineExceeded", "its own timeout"
    assert prediction.runs["R"]["error"] == "ChildFailed"


def test_an_update_wait_in_groups_behaves_as_a_signal_wait() -> None:
    first, losing = b.wait_update("u"), b.wait_update("u")
    program = b.program(
        b.sleep(HOUR),
        b.any_of(b.wait("a"), losing),
        b.all_of(first, b.wait_update("v", timeout=HOUR, default="no update")),
        b.reply(first),
    )
    prediction = predict(program, [b.update("u", 1, "u1"), b.signals(("a", 2)), b.time(4 * HOUR)], "R")
    # The signal settles the any_of as it opens: the losing update wait takes nothing.
    assert values(prediction)[1:] == [
        ["value", [0, 2]],
        ["value", [["update", "u1", "u", 1], "no update"]],
        ["value", None],
    ]
    assert prediction.updates == {"u1": ["reply", "reply R|0|3"]}
