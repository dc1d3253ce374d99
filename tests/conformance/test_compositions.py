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
