"""Signals, queries and continue-as-new: on a real worker, and in this process within one transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

import durable_django as durable
from durable_django.models import HistoryEntry, Signal, WorkflowRun, WorkItem
from durable_django.worker import runner
from tests.testapp.workflows import adder, collect, inspectable, two_names, wait_or_timeout

from .waiting import wait_finished, wait_for, wait_status

WAITING = WorkflowRun.Status.WAITING


@pytest.mark.broker
def test_signals_sent_before_during_and_after_the_wait_are_each_consumed_once_in_order(worker):
    with transaction.atomic():
        run = collect.start(5)
        run.signal("item", 1)  # before the workflow even started
    run.signal("item", 2)
    wait_for(lambda: Signal.objects.filter(run=run, consumed_seq__isnull=True).count() == 0, timeout=20)
    run = wait_status(run, WAITING, timeout=20)  # now it waits at its third wait_signal
    run.signal("item", 3)
    run.signal("item", 3)  # the same payload twice is two signals
    with transaction.atomic():
        run.signal("item", 4)
        run.signal("item", 5)  # one more than the workflow reads: it stays in the inbox
    (run,) = wait_finished([run], timeout=20)
    assert run.result == [1, 2, 3, 3, 4]
    consumed = Signal.objects.filter(run=run, consumed_seq__isnull=False).order_by("consumed_seq")
    assert list(consumed.values_list("payload_json", "consumed_seq")) == [
        ("1", 0), ("2", 1), ("3", 2), ("3", 3), ("4", 4)
    ]  # fmt: skip
    assert list(Signal.objects.filter(run=run, consumed_seq__isnull=True).values_list("payload_json", flat=True)) == [
        "5"
    ]


@pytest.mark.broker
def test_signals_of_other_names_wait_for_their_own_wait(worker):
    run = two_names.start()
    with transaction.atomic():
        run.signal("b", "second")
        run.signal("a", "first")
    (run,) = wait_finished([run], timeout=20)
    assert run.result == ["first", "second"]


@pytest.mark.broker
def test_a_signal_wait_times_out_with_none(worker):
    from datetime import timedelta

    from durable_django.testing import advance_time

    run = wait_or_timeout.start(hours=24)
    wait_status(run, WAITING, timeout=20)
    advance_time(timedelta(hours=23))
    run = wait_status(run, WAITING, timeout=5)
    advance_time(timedelta(hours=1))
    (run,) = wait_finished([run], timeout=20)
    assert run.result is None
    wait = HistoryEntry.objects.get(run=run, kind="signal")
    assert wait.finished_at >= wait.fire_at


@pytest.mark.broker
def test_a_signal_to_a_finished_run_is_refused_and_leaves_nothing(worker):
    run = collect.start(1)
    run.signal("item", "only")
    wait_finished([run], timeout=20)
    with pytest.raises(durable.RunFinished, match="is completed; signal 'item' would never be read"):
        run.signal("item", "late")
    with pytest.raises(durable.RunFinished):
        durable.signal(run.workflow_id, "item", "late")
    assert Signal.objects.filter(run=run).count() == 1


@pytest.mark.django_db
def test_a_signal_to_an_unknown_run_is_refused():
    with pytest.raises(durable.RunNotFound, match="no run has workflow_id 'nobody'"):
        durable.signal("nobody", "item")


@pytest.mark.broker
def test_query_shows_the_locals_where_the_run_waits_and_state_needs_no_replay(worker):
    run = inspectable.start(21)
    run = wait_status(run, WAITING, timeout=20)
    assert run.query() == {"order_id": 21, "stage": "waiting for shipment", "charge": 42}
    assert run.state == {"stage": "waiting for shipment", "charge": 42}
    run.signal("ship", {"carrier": "UPS"})
    (run,) = wait_finished([run], timeout=20)
    assert run.result == [42, {"carrier": "UPS"}]
    assert run.query() == {}


@pytest.mark.broker
def test_continue_as_new_keeps_signals_not_yet_consumed(worker):
    run = adder.start(0, 3)
    with transaction.atomic():
        for value in (1, 2, 3, 4, 5):
            run.signal("add", value)
    run = wait_for(
        lambda: WorkflowRun.objects.filter(pk=run.pk, state_json="15", status=WAITING).first(),
        timeout=20,
        what="all five signals added",
    )
    assert run.generation == 1, "the run should have continued as new once, after three signals"
    assert HistoryEntry.objects.filter(run=run).count() == 5  # 2 waits + 2 states + the wait now pending
    # The first generation's signals went with its history; 4 and 5 were taken by the second one.
    assert sorted(Signal.objects.filter(run=run).values_list("payload_json", "consumed_seq")) == [("4", 0), ("5", 2)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_messages")
def test_one_transaction_of_signals_wakes_its_run_once_and_a_rolled_back_wake_is_redone():
    from durable_django.testing import run_until_idle

    run = collect.start(3)
    run_until_idle()
    with transaction.atomic():
        for value in range(500):
            run.signal("item", value)
    assert WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).count() == 1
    run_until_idle()

    other = collect.start(1)
    run_until_idle()
    with transaction.atomic():
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            other.signal("item", "rolled back")
            1 / 0  # noqa: B018
        other.signal("item", "kept")
    assert WorkItem.objects.filter(run=other, kind=WorkItem.Kind.ADVANCE).count() == 1
    run_until_idle()
    other.refresh_from_db()
    assert other.result == ["kept"]


@pytest.mark.django_db
def test_a_signal_after_the_run_advanced_in_the_same_transaction_wakes_it_again():
    with transaction.atomic():
        run = collect.start(1)
        (item,) = WorkItem.objects.filter(run=run)
        runner.work(item.pk)  # the run advances and waits for "item"
        assert not WorkItem.objects.filter(run=run).exists()
        run.signal("item", "x")
        assert WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).exists(), "nothing will advance the run"


@pytest.mark.django_db
def test_a_refused_signal_leaves_the_callers_transaction_usable():
    # A view under ATOMIC_REQUESTS catches RunFinished and goes on with its own queries.
    run = collect.start(1)
    WorkflowRun.objects.filter(pk=run.pk).update(status=WorkflowRun.Status.COMPLETED)
    with transaction.atomic():
        with pytest.raises(durable.RunFinished):
            run.signal("item", "late")
        assert WorkflowRun.objects.filter(pk=run.pk).exists()
        with pytest.raises(durable.RunNotFound):
            WorkflowRun.objects.filter(pk=run.pk).delete()
            run.signal("item", "gone")
        assert not WorkflowRun.objects.filter(pk=run.pk).exists()
