"""Compositions that once broke a guarantee, each as the smallest program (or workflow) that shows it.

Each is checked against the reference model. A newly found bug lands here as
``xfail(strict=True)`` with its line in ``known_bugs.py``; once fixed, the test passes, which
fails it, and the mark and the line go.
"""

from __future__ import annotations

import pytest

import durable_django as durable
from durable_django.models import WorkflowRun
from durable_django.store import generator_cache
from durable_django.testing import no_broker, run_until_idle

from . import build as b
from .compare import report
from .inline import check
from .model import Event
from .program import Program

pytestmark = pytest.mark.django_db(transaction=True)
HOUR, DAY = 3600, 86400


def assert_conforms(program: Program, events: list[Event]) -> None:
    problems, expected = check(program, events)
    assert expected.ambiguous is None, expected.ambiguous
    assert not problems, report(program, events, problems)


@pytest.fixture(autouse=True)
def _fresh_ids() -> None:
    b.fresh()


def test_finding_1_a_wait_that_loses_an_any_of_leaves_its_buffered_signal_for_the_next_wait() -> None:
    program = b.program(b.sleep(HOUR), b.any_of(b.wait("a"), b.wait("b")), b.wait("b", timeout=DAY))
    assert_conforms(program, [b.signals(("a", 1), ("b", 2)), b.time(2 * HOUR)])


def test_finding_1_a_signal_loop_over_any_of_takes_every_signal_in_order() -> None:
    program = b.program(b.loop(3, b.any_of(b.wait("submit"), b.wait("exit"))))
    assert_conforms(program, [b.signals(("submit", 1), ("submit", 2), ("exit", 3))])


def test_finding_2_no_attempt_starts_after_a_cancel_that_landed_while_a_step_ran() -> None:
    program = b.program(b.step("cancels", "flaky", 1))
    assert_conforms(program, [])


def test_finding_2_cleanup_in_finally_runs_when_the_cancel_lands_while_the_step_runs() -> None:
    program = b.program(b.finally_([b.step("cancels", "ok")], [b.step("ok")]))
    assert_conforms(program, [])


def test_finding_3_each_generation_runs_its_own_child() -> None:
    program = b.program(b.child(b.program(b.step("ok"))), b.continue_as_new(), max_gen=2)
    assert_conforms(program, [])


def test_finding_5_an_all_of_of_150_waits_takes_150_buffered_signals() -> None:
    program = b.program(b.sleep(HOUR), b.all_of(*[b.wait("vote") for _ in range(150)]))
    votes = b.signals(*[("vote", number) for number in range(150)])
    assert_conforms(program, [votes, b.time(2 * HOUR)])


def test_review_a_step_opened_beside_a_buffered_signal_that_settles_the_any_of_never_runs() -> None:
    # The wait after the group keeps the run alive: a run that ends in that advance drops the step.
    program = b.program(b.sleep(HOUR), b.any_of(b.wait("a"), b.step("ok", policy="once")), b.wait("b"))
    assert_conforms(program, [b.signals(("a", 1)), b.time(2 * HOUR)])


def test_review_a_delivered_cancel_is_not_raised_again_in_the_next_generation() -> None:
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.continue_as_new()]), max_gen=1)
    assert_conforms(program, [b.cancel()])


def test_new_a_wait_whose_timeout_comes_due_with_its_signal_in_the_inbox_takes_the_signal() -> None:
    program = b.program(b.wait("a", timeout=HOUR))
    assert_conforms(program, [b.signals(("a", 1), late=2 * HOUR)])


def test_new_an_any_of_whose_timer_fires_beside_a_buffered_signal_returns_the_lower_index() -> None:
    program = b.program(b.any_of(b.wait("a"), b.sleep(HOUR)))
    assert_conforms(program, [b.signals(("a", 1), late=2 * HOUR)])


# Finding 7 needs a blocked parent: a workflow whose code changes under its run.
_CODE = {"child_argument": 1}


@durable.workflow(name="conformance.findings.waits_forever")
def waits_forever(argument: int):  # type: ignore[no-untyped-def]
    yield durable.wait_signal("never")


@durable.workflow(name="conformance.findings.parent")
def parent_of_a_waiting_child():  # type: ignore[no-untyped-def]
    yield durable.any_of(waits_forever(_CODE["child_argument"]), durable.wait_signal("poke"))


def test_finding_7_cancelling_a_blocked_parent_cancels_its_live_child() -> None:
    with no_broker():
        parent = parent_of_a_waiting_child.start()
        run_until_idle()
        _CODE["child_argument"] = 2  # deployed code that yields another child: the replay diverges
        try:
            generator_cache.clear()
            parent.signal("poke")
            run_until_idle()
            parent.refresh_from_db()
            assert parent.status == WorkflowRun.Status.BLOCKED
            parent.cancel()
            run_until_idle()
        finally:
            _CODE["child_argument"] = 1
        child = WorkflowRun.objects.get(parent=parent)
        assert child.status == WorkflowRun.Status.CANCELLED, f"the child is {child.status}"


def test_the_yields_after_a_step_result_refused_by_a_cancel_are_not_kept() -> None:
    # Found by the generator: a hundred and one timeouts push the step into a fresh advance, where
    # the one-statement path fed the live generator its result, which went on to set_state.
    program = b.program(b.loop(101, b.wait("a", timeout=0)), b.step("cancels", "ok", policy="once"), b.state())
    assert_conforms(program, [b.time(60 * DAY)])


def test_a_child_beside_a_buffered_signal_that_settles_the_any_of_never_starts() -> None:
    # Found by make fuzz (the model started the child and cancelled it; docs/parallel.md says never starts).
    program = b.program(b.sleep(HOUR), b.any_of(b.wait("b"), b.child(b.program(b.step("ok")))))
    assert_conforms(program, [b.signals(("b", 1)), b.time(2 * HOUR)])


def test_workflow_info_reads_the_position_after_groups_patches_and_a_cancel_and_in_a_child() -> None:
    program = b.program(
        b.all_of(b.step("ok"), b.wait("a")),
        b.info(),
        b.try_([b.wait("b")], ["Cancelled"], [b.info(), b.child(b.program(b.step("ok"), b.info()))]),
        b.info(),
        b.continue_as_new(),
        max_gen=1,
    )
    assert_conforms(program, [b.signals(("a", 1)), b.cancel(), b.signals(("a", 2))])


def test_updates_are_taken_oldest_first_answered_later_and_a_retried_id_gets_the_first_answer() -> None:
    first, second = b.wait_update("u"), b.wait_update("u", timeout=HOUR, default="no update")
    program = b.program(first, b.state(), second, b.reject(second), b.reply(first), b.wait_update("u"))
    events = [b.update("u", 1, "u1"), b.update("u", 2, "u2"), b.update("u", 1, "u1"), b.update("u", 3, "u3")]
    assert_conforms(program, events)


def test_an_update_wait_times_out_to_its_default_and_an_update_to_a_finished_run_is_refused() -> None:
    program = b.program(b.wait_update("u", timeout=HOUR, default="no update"))
    assert_conforms(program, [b.time(2 * HOUR), b.update("u", 1, "u1")])


def test_a_cancel_before_the_reply_leaves_the_caller_with_run_finished() -> None:
    wait = b.wait_update("u")
    program = b.program(wait, b.try_([b.wait("a")], ["Cancelled"], [b.step("ok")], reraise=True), b.reply(wait))
    assert_conforms(program, [b.update("u", 1, "u1"), b.update("u", 2, "u2"), b.cancel()])


def test_the_validator_refuses_by_the_published_state_and_payload_before_anything_is_sent() -> None:
    program = b.program(b.wait("a"), b.state(), b.wait_update("v"), b.wait_update("v"))
    events = [b.update("v", 3, "u1"), b.signals(("a", 1)), b.update("v", 3, "u2"), b.update("v", 4, "u3")]
    assert_conforms(program, events)


def test_workflow_info_reads_ids_and_the_suggestion_to_continue_as_new() -> None:
    program = b.program(b.info(), b.child(b.program(b.info())), b.info(), b.continue_as_new(), max_gen=1)
    assert_conforms(program, [])


def test_the_deadline_raises_deadline_exceeded_where_the_run_waits_and_compensation_runs() -> None:
    program = b.program(b.try_([b.wait_update("u")], ["DeadlineExceeded"], [b.step("ok")], reraise=True), timeout=HOUR)
    assert_conforms(program, [b.time(2 * HOUR)])


def test_a_cancel_before_the_deadline_is_the_reason() -> None:
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.sleep(3 * HOUR)]), timeout=2 * HOUR)
    assert_conforms(program, [b.cancel(), b.time(4 * HOUR)])


def test_a_child_with_its_own_deadline_fails_its_parent_with_child_failed() -> None:
    program = b.program(b.try_([b.child(b.program(b.wait("a")), timeout=HOUR)], ["ChildFailed"], [b.state()]))
    assert_conforms(program, [b.time(2 * HOUR)])


def test_the_deadline_spans_continue_as_new() -> None:
    program = b.program(b.sleep(HOUR), b.continue_as_new(), b.wait("a"), max_gen=1, timeout=3 * HOUR)
    assert_conforms(program, [b.time(2 * HOUR), b.time(2 * HOUR)])


def test_a_child_started_after_its_parents_deadline_passed_does_not_inherit_it() -> None:
    # The parent's deadline passed an hour in; the child its compensation starts runs normally.
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.child(b.program(b.wait("b")))]), timeout=HOUR)
    assert_conforms(program, [b.time(2 * HOUR)])


def test_a_generation_that_continued_as_new_from_the_deadlines_compensation_has_no_deadline_nor_do_later_ones() -> None:
    program = b.program(
        b.try_([b.wait("a")], ["Cancelled"], [b.continue_as_new()]), b.continue_as_new(), max_gen=2, timeout=HOUR
    )
    assert_conforms(program, [b.time(2 * HOUR), b.signals(("a", 1)), b.time(4 * HOUR)])


def test_a_child_of_a_generation_that_continued_as_new_from_the_deadlines_compensation_has_no_deadline() -> None:
    handler = [b.continue_as_new()]
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], handler), b.child(b.program(b.wait("b"))), max_gen=1)
    program["timeout"] = HOUR
    events = [b.time(2 * HOUR), b.signals(("a", 1)), b.time(2 * HOUR), b.signals(("b", 2), to=".1:5#0")]
    assert_conforms(program, events)


def test_a_child_started_after_its_parents_deadline_passed_in_pass_time_does_not_inherit_it() -> None:
    program = b.program(b.try_([b.wait("a")], ["Cancelled"], [b.child(b.program(b.wait("b")))]), timeout=HOUR)
    assert_conforms(program, [b.time(HOUR + 1200)])


def test_continue_as_new_rejects_a_taken_update_it_did_not_answer() -> None:
    program = b.program(b.wait_update("u"), b.wait("a"), b.continue_as_new(), max_gen=1)
    assert_conforms(program, [b.update("u", 1, "u1"), b.update("u", 2, "u2"), b.signals(("a", 1))])


def test_an_update_wait_in_groups_behaves_as_a_signal_wait() -> None:
    # A losing wait takes nothing (the update stays for the next wait); a timed-out one gives its default.
    first, losing = b.wait_update("u"), b.wait_update("u")
    program = b.program(
        b.sleep(HOUR),
        b.any_of(b.wait("a"), losing),
        b.all_of(first, b.wait_update("v", timeout=HOUR, default="no update")),
        b.reply(first),
    )
    assert_conforms(program, [b.update("u", 1, "u1"), b.signals(("a", 2)), b.time(4 * HOUR)])


def test_a_timer_fired_in_a_batch_replays_a_passed_deadline_as_deadline_exceeded() -> None:
    # Found by make fuzz: a worker's sweeper sends due timers in batches (timers.fire_batch); one
    # that replayed a run whose deadline was delivered raised plain Cancelled at that yield, the
    # handler for DeadlineExceeded did not catch it, and the run blocked (the code "ends there").
    from datetime import timedelta

    from durable_django.models import WorkItem
    from durable_django.store import timers
    from durable_django.store.leases import db_now_plus
    from durable_django.testing import pass_time

    from .inline import start

    program = b.program(b.try_([b.sleep(2 * HOUR)], ["DeadlineExceeded"], [b.sleep(HOUR)]), timeout=HOUR)
    with no_broker():
        run = start(program, "R", "conformance-batch-deadline")
        run_until_idle()
        pass_time(timedelta(seconds=HOUR + 60))  # the deadline is raised at the sleep; the handler sleeps
        generator_cache.clear()  # the batch's worker is another process: it replays
        timer = WorkItem.objects.get(run=run, kind=WorkItem.Kind.TIMER)
        WorkItem.objects.filter(pk=timer.pk).update(available_at=db_now_plus(-1))
        timers.fire_batch([timer.pk])
        run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.error_json) == (WorkflowRun.Status.COMPLETED, None)
    assert run.result["trace"] == [["raise", "DeadlineExceeded"], ["value", None]]
