"""Where two features meet, each guarantee still holds (issue 10's findings, one test each).

These run in the test's own process through ``durable_django.testing`` (no broker), so the
interleavings that need two workers are driven by hand: a step claimed, a cancel committed,
then the step's report.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from durable_django.core.interpreter import error_info
from durable_django.models import HistoryEntry, Signal, WorkflowRun, WorkItem
from durable_django.store import work_items
from durable_django.testing import pass_time, run_until_idle, run_workflow
from durable_django.worker import runner
from tests.testapp.compositions import (
    cancel_each_generation,
    child_per_generation,
    cleanup_in_finally,
    compensate_at_the_step,
    long_sleeper,
    parent_of_waiter,
    race_two_waits,
    sleeper_past_year_9999,
    step_or_signal,
    submit_loop,
    tell_timeout_apart,
    votes,
)
from tests.testapp.models import Counter
from tests.testapp.workflows import wait_or_timeout

pytestmark = pytest.mark.django_db
Status = WorkflowRun.Status


def counter(name: str) -> int:
    found = Counter.objects.filter(name=name).first()
    return 0 if found is None else found.value


def fresh(run: WorkflowRun) -> WorkflowRun:
    run.refresh_from_db()
    return run


def claim_first_step(run: WorkflowRun) -> work_items.Claim:
    """Advance the new run as a worker would, keeping the step it leases to itself unrun."""
    (item,) = WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).values_list("pk", flat=True)
    held = work_items.take(item)
    assert held is not None, "the run's first step was not leased inline"
    return held


def hand_on(claim: work_items.Claim | None) -> None:
    """A report may lease the run's next step to this 'worker': give it back for run_until_idle()."""
    if claim is not None:
        work_items.release(claim)


# 1: a wait that loses an any_of takes no signal.
def test_a_wait_that_loses_an_any_of_leaves_its_signal_for_the_next_wait():
    run = race_two_waits.start()
    run.signal("a", "A")
    run.signal("b", "B")
    run_until_idle()
    assert fresh(run).result == {"first": [0, "A"], "later": "B"}


def test_a_signal_loop_over_any_of_takes_every_signal_sent_close_together():
    run = submit_loop.start()
    with transaction.atomic():
        for value in ("s1", "s2", "s3"):
            run.signal("submit", value)
        run.signal("exit", "bye")
    run_until_idle()
    assert fresh(run).result == {"submitted": ["s1", "s2", "s3"], "exit": "bye"}


# review finding: a step opened in the same advance that a buffered signal settles the group.
def test_an_any_of_step_that_loses_to_a_buffered_signal_never_runs():
    run = step_or_signal.start("never-ran")
    run.signal("go", "now")
    run_until_idle()
    pass_time(timedelta(hours=1))
    assert fresh(run).result == [1, "now"]
    assert counter("never-ran") == 0
    assert HistoryEntry.objects.get(run=run, kind="step").status == HistoryEntry.Status.CANCELLED


# 5: every buffered signal reaches a group of waits, however many.
def test_an_all_of_of_150_waits_takes_150_buffered_signals():
    run = votes.start(150)
    with transaction.atomic():
        for index in range(150):
            run.signal("vote", index)
    run_until_idle()
    assert fresh(run).status == Status.COMPLETED
    assert run.result == list(range(150))


# 2: a cancel that lands while a step attempt runs.
def test_a_cancel_while_an_attempt_runs_stops_the_retries_and_raises_at_that_steps_yield():
    run = compensate_at_the_step.start("at-step", fail_times=1)
    held = claim_first_step(run)
    run.cancel()
    hand_on(work_items.record_failure(held, error_info(RuntimeError("attempt 1 failed")), retry_in=timedelta(0)))
    runner.work(held.item_id)  # the retry's message arrives before the cancel's wake-up
    run_until_idle()
    pass_time(timedelta(minutes=1))
    run = fresh(run)
    assert run.status == Status.CANCELLED, run.error
    entry = HistoryEntry.objects.get(run=run, name="tests.flaky")
    assert entry.attempts == 1, "an attempt started after the cancel"
    assert (counter("at-step:compensated"), counter("at-step:after")) == (1, 0)


def test_a_step_that_succeeds_after_the_cancel_keeps_its_result_and_raises_cancelled_at_its_yield():
    run = compensate_at_the_step.start("succeeds")
    held = claim_first_step(run)
    run.cancel()
    hand_on(work_items.record_success(held, "1"))
    run_until_idle()
    run = fresh(run)
    assert run.status == Status.CANCELLED
    entry = HistoryEntry.objects.get(run=run, name="tests.flaky")
    assert entry.result_json == "1", "the attempt's result was not recorded"
    assert (counter("succeeds:compensated"), counter("succeeds:after")) == (1, 0)


def test_cleanup_in_finally_runs_when_the_cancel_lands_during_the_step():
    run = cleanup_in_finally.start("finally")
    held = claim_first_step(run)
    run.cancel()
    hand_on(work_items.record_success(held, "1"))
    run_until_idle()
    run = fresh(run)
    assert run.status == Status.CANCELLED
    assert counter("finally:cleanup") == 1, "the cleanup in finally was cancelled before it started"


# 3: a child per generation.
def test_each_generation_waits_for_its_own_child_not_the_previous_generations():
    run = run_workflow(child_per_generation, 0, 2)
    assert run.status == Status.COMPLETED
    assert run.result == 4
    children = list(WorkflowRun.objects.filter(parent=run).order_by("created_at"))
    assert [child.status for child in children] == [Status.COMPLETED] * 3
    assert [child.result for child in children] == [0, 2, 4]


# c: a delivered cancel is not raised again in the next generation.
def test_a_cancel_delivered_before_continue_as_new_is_not_raised_again():
    run = run_workflow(cancel_each_generation, 0)
    run.cancel()
    run_until_idle()
    run = fresh(run)
    assert (run.status, run.generation) == (Status.WAITING, 1)
    run.signal("next")
    run_until_idle()
    assert (fresh(run).status, run.result) == (Status.COMPLETED, 1)


# 4: a resumed run keeps its timers.
def test_resuming_a_blocked_run_does_not_fire_its_pending_timers():
    run = run_workflow(wait_or_timeout, 24 * 7)
    assert run.status == Status.WAITING
    WorkflowRun.objects.filter(pk=run.pk).update(status=Status.BLOCKED, error_json='{"type":"x","message":"x"}')
    run.resume()
    run_until_idle()
    assert fresh(run).status == Status.WAITING, "the 7-day timeout fired at once"
    pass_time(timedelta(days=7))
    assert (fresh(run).status, run.result) == (Status.COMPLETED, None)


# 6: durations the database cannot hold are refused where they are made.
def test_a_sleep_beyond_what_the_database_holds_fails_the_run_at_its_yield():
    run = run_workflow(long_sleeper)
    assert run.status == Status.FAILED
    assert run.error["type"] == "durable_django.exceptions.InvalidRequest"
    assert not WorkItem.objects.filter(run=run).exists()


def test_a_sleep_until_an_instant_beyond_what_the_database_holds_fails_the_run_at_its_yield():
    # 9999-12-31 23:00 five hours west of UTC is in year 10000 by the database's clock: refused
    # where it is made, as sleep(timedelta.max) is, not blocked after every advance failed.
    run = run_workflow(sleeper_past_year_9999, 5)
    assert run.status == Status.FAILED
    assert run.error["type"] == "durable_django.exceptions.InvalidRequest"
    assert "beyond year 9999" in run.error["message"]
    assert not WorkItem.objects.filter(run=run).exists()
    assert run_workflow(sleeper_past_year_9999, 0).status == Status.WAITING  # 9999-12-31 23:00 UTC is held


# 7: cancelling a blocked parent cancels its live child.
def test_cancelling_a_blocked_parent_cancels_its_live_child():
    run = run_workflow(parent_of_waiter)
    child = WorkflowRun.objects.get(parent=run)
    assert (run.status, child.status) == (Status.RUNNING, Status.WAITING)
    WorkflowRun.objects.filter(pk=run.pk).update(status=Status.BLOCKED, error_json='{"type":"x","message":"x"}')
    run.cancel()
    run_until_idle()
    assert fresh(run).status == Status.CANCELLED
    assert fresh(child).status == Status.CANCELLED
    assert not Signal.objects.filter(run=child).exists()


# wait_signal(default=...): a timeout told apart from a signal without payload.
def test_a_wait_tells_a_timeout_from_a_signal_without_a_payload():
    run = tell_timeout_apart.start()
    run.signal("ping")  # no payload: None
    run_until_idle()
    pass_time(timedelta(minutes=2))
    pass_time(timedelta(minutes=2))
    assert fresh(run).result == [None, "timed out", ["timed out"]]


def test_a_wait_whose_timeout_came_due_with_its_signal_in_the_inbox_takes_the_signal():
    run = run_workflow(wait_or_timeout, 1)
    WorkItem.objects.filter(run=run, kind=WorkItem.Kind.TIMER).update(available_at=timezone.now())
    run.signal("go", "just in time")  # committed before the timer is fired
    (timer,) = WorkItem.objects.filter(run=run, kind=WorkItem.Kind.TIMER).values_list("pk", flat=True)
    runner.work(timer)  # the timer's message arrives first
    run_until_idle()
    assert (fresh(run).status, run.result) == (Status.COMPLETED, "just in time")


def test_no_attempt_starts_after_a_cancel_even_when_the_running_attempts_worker_died():
    run = compensate_at_the_step.start("died", fail_times=0)
    held = claim_first_step(run)
    run.cancel()
    run_until_idle()  # the cancel waits: the attempt is running
    assert fresh(run).cancel_requested
    WorkItem.objects.filter(pk=held.item_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert work_items.take(held.item_id) is None, "a new attempt started after the cancel"
    run_until_idle()
    run = fresh(run)
    assert run.status == Status.CANCELLED
    assert HistoryEntry.objects.get(run=run, name="tests.flaky").attempts == 1
    assert counter("died:compensated") == 1
