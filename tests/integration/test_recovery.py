"""Lost messages, dead workers and zombie writes: the database decides, workers recover."""

from __future__ import annotations

import pytest

from durable_django.core.interpreter import ErrorInfo
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import outbox, work_items
from durable_django.store.clock import Now
from durable_django.store.owners import Owner
from durable_django.store.querysets import db_now_plus
from tests.testapp.models import Counter
from tests.testapp.workflows import bump_twice, echo_workflow, long_holder, spread

from .waiting import wait_finished, wait_for


@pytest.mark.broker
def test_a_dropped_wake_up_message_is_recovered_by_the_sweeper(worker, monkeypatch):
    dropped = []
    # The broker accepts the publish and loses it: the publisher cannot tell.
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: dropped.append((item_id,)))
    run = bump_twice.start("lost-message")
    assert len(dropped) == 1
    (run,) = wait_finished([run], timeout=20)
    assert run.status == WorkflowRun.Status.COMPLETED
    assert run.result == [1, 2]


@pytest.mark.broker
def test_a_run_whose_worker_died_holding_the_lease_is_taken_over(worker, monkeypatch):
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)
    run = echo_workflow.start(5)
    held = work_items.take(WorkItem.objects.get(run=run).pk)  # this process "dies" holding step 0
    assert held is not None and held.step == "tests.double"
    WorkItem.objects.filter(pk=held.item_id).update(lease_expires_at=db_now_plus(-1))  # its lease ran out
    (run,) = wait_finished([run], timeout=20)
    assert run.result["doubled"] == 10
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_stale_lease_holders_late_completion_is_refused(monkeypatch):
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)
    run = echo_workflow.start(5)
    advance = WorkItem.objects.get(run=run)
    zombie = work_items.take(advance.pk)
    assert zombie is not None
    WorkItem.objects.filter(pk=zombie.item_id).update(lease_expires_at=db_now_plus(-1))
    successor = work_items.take(zombie.item_id)
    assert successor is not None and successor.token == zombie.token + 1

    refused_before = outbox.stale_writes_refused
    assert work_items.record_success(zombie, "999") is None
    assert outbox.stale_writes_refused == refused_before + 1
    assert HistoryEntry.objects.get(run=run, seq=0).status == HistoryEntry.Status.SCHEDULED

    work_items.record_success(successor, "10")
    run.refresh_from_db()
    assert run.status == WorkflowRun.Status.COMPLETED
    assert run.result["doubled"] == 10

    # Even after the successor finished, the zombie's failure report changes nothing.
    assert work_items.record_failure(zombie, ErrorInfo("x", "late"), retry_in=None) is None
    assert HistoryEntry.objects.get(run=run, seq=0).result_json == "10"


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_message_for_a_claimed_item_is_a_no_op(monkeypatch):
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)
    run = echo_workflow.start(5)
    item = WorkItem.objects.get(run=run)
    held = work_items.take(item.pk)
    assert held is not None
    assert work_items.take(held.item_id) is None  # lease is live: a second delivery does nothing
    assert WorkItem.objects.get(pk=held.item_id).token == held.token


@pytest.mark.broker
def test_a_step_whose_pool_process_was_killed_is_taken_over_long_before_its_lease_ends(worker):
    run = long_holder.start(1.0)  # its lease is its 120 s timeout plus the grace
    owner = wait_for(
        lambda: (
            WorkItem.objects.filter(run=run, kind=WorkItem.Kind.STEP, lease_expires_at__isnull=False)
            .values_list("owner", flat=True)
            .first()
        ),
        timeout=20,
        what="the step to be running",
    )
    assert worker.kill_child(owner_pid(owner))
    (run,) = wait_finished([run], timeout=30)  # far less than the 121 s lease
    assert run.result == "held"
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 2


@pytest.mark.broker
def test_runs_complete_when_the_worker_loses_half_its_messages_and_doubles_others(worker):
    worker.env["DURABLE_FAULT_PUBLISH"] = "drop=0.5,duplicate=0.3"
    worker.kill()
    worker.start()
    runs = [spread.start(5) for _ in range(20)]
    runs = wait_finished(runs, timeout=60)
    assert {run.result for run in runs} == {5}
    assert sorted(Counter.objects.filter(name__startswith="spread:").values_list("value", flat=True)) == [20] * 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "in_queue,seconds_late,expected",
    [
        (0, 30, {"late": 6, "never sent": 2}),  # an empty queue holds none of them: resend after REPUBLISH_AFTER
        (4, 30, {"late": 0, "never sent": 2}),  # a busy queue probably still holds them: wait
        (4, 120, {"late": 6, "never sent": 2}),  # past REPUBLISH_AFTER_BUSY: resend, whatever else is queued
        (500, 120, {"late": 6, "never sent": 2}),
    ],
)
def test_the_sweeper_resends_a_lost_message_within_its_bound_whatever_else_is_queued(
    monkeypatch, settings, in_queue, seconds_late, expected
):
    from datetime import timedelta

    from durable_django.worker import sweeper

    settings.DURABLE_REPUBLISH_AFTER = 1
    settings.DURABLE_REPUBLISH_AFTER_BUSY = 60
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)
    runs = [echo_workflow.start(index) for index in range(8)]
    items = WorkItem.objects.filter(run__in=runs).order_by("pk")
    late, never_sent = [item.pk for item in items[:6]], [item.pk for item in items[6:]]
    WorkItem.objects.filter(pk__in=late).update(dispatched_at=Now() - timedelta(seconds=seconds_late))
    WorkItem.objects.filter(pk__in=never_sent).update(dispatched_at=None)
    published: list[int] = []
    monkeypatch.setattr(outbox, "publish", lambda item_id, queue, countdown=None: published.append(item_id))
    monkeypatch.setattr(outbox, "queue_length", lambda queue: in_queue)
    sweeper.sweep()
    assert {
        "late": len(set(published) & set(late)),
        "never sent": len(set(published) & set(never_sent)),
    } == expected


def owner_pid(owner: str) -> int:
    """The pid in a lease's owner (``host:pid:namespace:boot:started``)."""
    parsed = Owner.parse(owner)
    assert parsed is not None, f"not an owner: {owner!r}"
    return parsed.pid
