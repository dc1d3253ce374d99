"""Parallel requests, child workflows, cancellation with compensation, and versioning.

Most tests watch a real worker; those that need an exact interleaving work the items in this process.
"""

from __future__ import annotations

import pytest

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import work_items
from durable_django.worker import runner
from tests.testapp.models import Counter
from tests.testapp.workflows import (
    echo_workflow,
    fan_out_fail,
    first_of,
    parent,
    parent_of_failing,
    parent_of_sleeper,
    saga,
    versioned,
)

from .waiting import wait_finished, wait_for, wait_status

Status = WorkflowRun.Status
Entry = HistoryEntry.Status


def counters(key: str) -> dict[str, int]:
    return {c.name.split(":")[1]: c.value for c in Counter.objects.filter(name__startswith=f"{key}:")}


def work_on(item: WorkItem) -> None:
    """What a worker does with one message: take the item, then run its steps inline."""
    held = work_items.take(item.pk)
    for _ in range(20):
        if held is None:
            return
        held = runner._run_step(held)


def advance_items(run: WorkflowRun) -> list[WorkItem]:
    return list(WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE))


@pytest.mark.broker
def test_all_of_raises_the_failed_branch_and_cancels_the_others(worker):
    run = fan_out_fail.start()
    (run,) = wait_finished([run], timeout=30)
    assert run.result == {"failed": "tests.flaky"}
    assert HistoryEntry.objects.get(run=run, name="tests.flaky").status == Entry.FAILED
    assert HistoryEntry.objects.get(run=run, kind="sleep").status == Entry.CANCELLED
    assert HistoryEntry.objects.get(run=run, kind="all_of").status == Entry.COMPLETED
    assert not WorkItem.objects.filter(run=run).exists(), "the cancelled sleep left its timer behind"


@pytest.mark.broker
def test_any_of_returns_the_first_to_finish_and_cancels_the_rest(worker):
    run = first_of.start(hours=1)
    wait_status(run, Status.WAITING, timeout=20)
    run.signal("go", "now")
    (run,) = wait_finished([run], timeout=20)
    assert run.result == [0, "now"]
    assert HistoryEntry.objects.get(run=run, kind="sleep").status == Entry.CANCELLED
    assert not WorkItem.objects.filter(run=run).exists()


@pytest.mark.broker
def test_a_child_workflow_returns_its_result_to_the_parent(worker):
    run = parent.start(8)
    (run,) = wait_finished([run], timeout=20)
    assert run.result == 16
    child = WorkflowRun.objects.get(parent=run)
    assert child.workflow_id == f"{run.workflow_id}/0"
    assert child.status == Status.COMPLETED
    assert HistoryEntry.objects.get(run=run, seq=0).child_id == child.pk


@pytest.mark.broker
def test_a_failed_child_raises_in_the_parent(worker):
    run = parent_of_failing.start()
    (run,) = wait_finished([run], timeout=30)
    assert run.result == {"child_failed": "durable_django.exceptions.StepFailed"}
    assert WorkflowRun.objects.get(parent=run).status == Status.FAILED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_messages")
def test_a_run_that_already_has_a_childs_workflow_id_does_not_wedge_the_parent():
    echo_workflow.start(1, workflow_id="p/0")  # started by user code, before the parent
    run = parent.start(3, workflow_id="p")
    for _ in range(10):  # bounded: each round handles what a worker would
        items = list(WorkItem.objects.filter(run__workflow_id__startswith="p").exclude(kind=WorkItem.Kind.TIMER))
        if not items:
            break
        for item in items:
            work_on(item)
    run.refresh_from_db()
    assert run.is_finished, f"the parent is still {run.status}"


@pytest.mark.broker
def test_cancel_during_a_sleep_runs_the_compensation(worker):
    run = saga.start("sleeping")
    wait_status(run, Status.WAITING, timeout=20)
    run.cancel()
    (run,) = wait_finished([run], timeout=20)
    assert run.status == Status.CANCELLED
    assert run.error["type"] == "durable_django.exceptions.Cancelled"
    assert counters("sleeping") == {"charged": 1, "reserved": 1, "refunded": 1}
    assert not WorkItem.objects.filter(run=run).exists()


@pytest.mark.broker
def test_cancel_during_a_step_lets_the_attempt_finish_then_raises_at_its_yield_and_compensates(worker):
    run = saga.start("holding", hold_seconds=3)
    wait_for(
        lambda: WorkItem.objects.filter(run=run, kind="step", lease_expires_at__isnull=False, seq=2).exists(),
        timeout=20,
        what="the hold step to be running",
    )
    run.cancel()
    (run,) = wait_finished([run], timeout=20)
    assert run.status == Status.CANCELLED
    assert counters("holding") == {"charged": 1, "reserved": 1, "refunded": 1}
    # The running attempt finished and its result was kept; Cancelled came at its own yield,
    # so the sleep after it was never yielded and the compensation is the next position.
    held = HistoryEntry.objects.get(run=run, seq=2)
    assert (held.status, held.result_json, held.attempts) == (Entry.CANCELLED, '"held"', 1)
    assert HistoryEntry.objects.get(run=run, seq=3).name == "tests.bump"
    assert not HistoryEntry.objects.filter(run=run, kind="sleep").exists()
    assert "refused a late write" not in worker.logs()


@pytest.mark.broker
def test_cancel_of_a_step_waiting_to_start_is_at_once(worker, monkeypatch):
    from durable_django.store import outbox

    run = saga.start("not-started")
    wait_status(run, Status.WAITING, timeout=20)
    # Another start whose step never gets a message: it waits, not running, when the cancel lands.
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)
    other = saga.start("queued")
    other.cancel()
    monkeypatch.undo()
    (other,) = wait_finished([other], timeout=20)
    assert other.status == Status.CANCELLED
    assert counters("queued") == {}, "nothing ran: the first step was cancelled before it started"


@pytest.mark.broker
def test_cancelling_a_parent_cancels_its_child_and_both_compensate(worker):
    run = parent_of_sleeper.start("child-saga")
    wait_for(lambda: WorkflowRun.objects.filter(parent=run, status=Status.WAITING).exists(), timeout=20)
    run.cancel()
    # The parent does not wait for its child's compensation: wait for both.
    run, child = wait_finished([run, WorkflowRun.objects.get(parent=run)], timeout=20)
    assert (run.status, child.status) == (Status.CANCELLED, Status.CANCELLED)
    assert counters("child-saga") == {"charged": 1, "reserved": 1, "refunded": 1}


@pytest.mark.broker
def test_cancel_of_a_finished_run_is_refused(worker):
    run = parent.start(1)
    wait_finished([run], timeout=20)
    with pytest.raises(durable.RunFinished, match="nothing left to cancel"):
        run.cancel()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_messages")
def test_a_second_cancel_during_compensation_does_not_cancel_the_compensation():
    run = saga.start("twice")  # charge, reserve, sleep 1 h; on Cancelled: refund, re-raise
    for item in advance_items(run):
        work_on(item)
    assert WorkflowRun.objects.get(pk=run.pk).status == Status.WAITING

    run.cancel()
    (item,) = advance_items(run)
    refund = work_items.take(item.pk)  # Cancelled is raised at the sleep; the refund step is claimed
    assert refund is not None and refund.step == "tests.bump"

    run.cancel()  # an impatient second click while the refund runs
    for item in advance_items(run):
        work_on(item)
    runner._run_step(refund)

    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    refunded = Counter.objects.filter(name="twice:refunded").values_list("value", flat=True).first()
    assert refunded == 1, (
        f"the refund step is {HistoryEntry.objects.get(run=run, seq=refund.seq).status} and ran "
        f"{refunded or 0} time(s): the second cancel was delivered again, inside the except block"
    )


@pytest.mark.broker
def test_a_patched_workflow_replays_old_runs_on_the_old_branch(worker):
    old = versioned.start()
    wait_status(old, Status.WAITING, timeout=20)
    worker.env["TESTS_CODE_VERSION"] = "2"  # deploy the new code while the old run waits
    worker.kill()
    worker.start()
    new = versioned.start()
    wait_status(new, Status.WAITING, timeout=20)
    old.signal("go", "old")
    new.signal("go", "new")
    old, new = wait_finished([old, new], timeout=20)
    assert old.result == {"bonus": 0, "note": "old"}
    assert new.result == {"bonus": 42, "note": "new"}
    assert HistoryEntry.objects.filter(run=new, kind="patched", name="bonus").exists()
    assert not HistoryEntry.objects.filter(run=old, kind="patched").exists()
