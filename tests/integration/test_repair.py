"""Operators' tools: retry a failed run in place, or fork a run from a chosen position."""

from __future__ import annotations

import pytest

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.ops import repair
from durable_django.testing import run_until_idle
from durable_django.worker import runner
from tests.testapp.models import Counter
from tests.testapp.workflows import echo_workflow, repairable

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_messages")]
Status = WorkflowRun.Status


def work_until_idle(run: WorkflowRun, rounds: int = 20) -> WorkflowRun:
    for _ in range(rounds):
        items = list(WorkItem.objects.filter(run__in=[run.pk]).values_list("pk", flat=True))
        if not items:
            break
        for pk in items:
            runner.work(pk)
    run.refresh_from_db()
    return run


def failed_run(name: str) -> WorkflowRun:
    run = work_until_idle(repairable.start(name))
    assert run.status == Status.FAILED
    return run


def test_retry_runs_the_failing_step_again_and_keeps_what_came_before():
    run = failed_run("retry")
    Counter.objects.create(name="retry:fixed")  # the fix
    repair.retry(run)
    run = work_until_idle(run)
    assert (run.status, run.result) == (Status.COMPLETED, [1, "fixed", 1])
    assert Counter.objects.get(name="retry:before").value == 1, "the step before the failure ran again"
    assert HistoryEntry.objects.get(run=run, seq=1).attempts == 1


def test_fork_reuses_recorded_outcomes_before_the_chosen_position():
    run = failed_run("fork")
    Counter.objects.create(name="fork:fixed")
    forked = repair.fork(run, 1)
    forked = work_until_idle(forked)
    assert (forked.status, forked.result) == (Status.COMPLETED, [1, "fixed", 1])
    assert Counter.objects.get(name="fork:before").value == 1, "the fork re-ran a step it should reuse"
    assert forked.workflow_id.startswith(f"{run.workflow_id}.fork-")
    run.refresh_from_db()
    assert run.status == Status.FAILED, "the original run is left as it was"


def test_fork_from_the_start_runs_everything_again():
    run = failed_run("again")
    Counter.objects.create(name="again:fixed")
    forked = work_until_idle(repair.fork(run, 0, workflow_id="again-2"))
    assert forked.result == [2, "fixed", 1]


@pytest.mark.parametrize("seq,message", [(7, "is not one"), (-1, "is not one")])
def test_fork_refuses_a_position_the_run_does_not_have(seq, message):
    run = failed_run(f"bad-{seq}")
    with pytest.raises(durable.DurableError, match=message):
        repair.fork(run, seq)


def test_fork_refuses_a_taken_or_malformed_workflow_id_with_a_durable_error():
    run = repairable.start("fork-ids", workflow_id="repair-fork-ids")
    run_until_idle()
    echo_workflow.start(1, workflow_id="taken")
    for bad in ("taken", " padded ", "bell\x07"):
        try:
            repair.fork(run, 0, workflow_id=bad)
        except durable.DurableError:
            continue
        except Exception as error:
            raised = type(error).__name__
            raise AssertionError(f"fork(workflow_id={bad!r}) raised {raised}, not a DurableError") from error
        raise AssertionError(f"fork(workflow_id={bad!r}) was accepted")


def test_retry_refuses_a_run_that_did_not_fail():
    run = failed_run("twice")
    Counter.objects.create(name="twice:fixed")
    repair.retry(run)
    with pytest.raises(durable.DurableError, match="only failed or blocked runs can be retried"):
        repair.retry(run)
