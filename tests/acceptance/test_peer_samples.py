"""Peers' public samples, ported to this library and run as a new user would: public API and the testing toolkit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import durable_django as durable
from durable_django.models import WorkflowRun
from durable_django.testing import pass_time, run_until_idle, run_workflow, send_signal, send_update
from tests.testapp.models import Counter
from tests.testapp.samples import approval, batcher, fan_out, greeting, subscription, transfer, updatable_timer

pytestmark = pytest.mark.django_db
Status = WorkflowRun.Status


def count(name: str) -> int:
    found = Counter.objects.filter(name=name).first()
    return 0 if found is None else found.value


def fresh(run: WorkflowRun) -> WorkflowRun:
    run.refresh_from_db()
    return run


def test_updatable_timer_moved_later_wakes_at_the_new_time_not_the_old():
    start = timezone.now()
    run = run_workflow(updatable_timer, (start + timedelta(days=1)).isoformat())
    send_signal(run, "move", (start + timedelta(days=3)).isoformat())
    pass_time(timedelta(days=2), run=run)
    assert fresh(run).status == Status.WAITING, "the first timer fired after the signal moved it"
    pass_time(timedelta(days=1, minutes=1), run=run)
    assert fresh(run).status == Status.COMPLETED
    assert run.result == {"woke_at": (start + timedelta(days=3)).isoformat(), "moves": 1}


def test_updatable_timer_moved_earlier_wakes_at_once_when_the_new_time_is_past():
    start = timezone.now()
    run = run_workflow(updatable_timer, (start + timedelta(days=30)).isoformat())
    run = send_signal(run, "move", (start - timedelta(minutes=1)).isoformat())
    run_until_idle()
    assert fresh(run).status == Status.COMPLETED and run.result["moves"] == 1


def test_transfer_saga_refunds_a_withdrawal_whose_deposit_failed_and_fails_the_run():
    run = run_workflow(transfer, 100, True)
    assert run.status == Status.FAILED
    assert (count("withdrawn"), count("deposit"), count("refunded"), count("deposited")) == (100, 2, 100, 0)
    ok = run_workflow(transfer, 50, False)
    assert (ok.status, ok.result) == (Status.COMPLETED, "done")


def test_subscription_cancelled_mid_period_says_farewell_once_and_bills_no_more():
    run = run_workflow(subscription, "ann", 12)
    pass_time(timedelta(days=30), run=run)
    assert count("charge-ann") == 2 and fresh(run).state == {"billed": 2}
    run.cancel()
    run_until_idle()
    assert fresh(run).status == Status.CANCELLED
    pass_time(timedelta(days=90))
    assert (count("charge-ann"), count("farewell-ann")) == (2, 1)


def test_subscription_that_runs_out_says_farewell_once():
    run = run_workflow(subscription, "bob", 2)
    pass_time(timedelta(days=30), run=run)
    pass_time(timedelta(days=30), run=run)
    assert (fresh(run).status, run.result) == (Status.COMPLETED, 2)
    assert (count("charge-bob"), count("farewell-bob")) == (2, 1)


def test_batcher_takes_every_signal_exactly_once_across_generations():
    run = run_workflow(batcher, 3, 3)
    for number in range(7):  # sent together: the first batch takes three, the next generation the next three
        durable.signal(run.workflow_id, "item", number)
    run_until_idle()
    pass_time(timedelta(hours=1), run=run)  # the third batch has one item and waits an hour for more
    run_until_idle()
    run = fresh(run)
    assert (run.status, run.generation, run.result) == (Status.COMPLETED, 2, 1)
    assert count("processed") == 7


def test_fan_out_one_child_failing_cancels_the_others_whose_cleanup_runs_once():
    run = run_workflow(fan_out, True)
    pass_time(timedelta(minutes=1))
    run_until_idle()
    run = fresh(run)
    assert (run.status, run.result) == (Status.COMPLETED, "compensated")
    assert count("fan-out-compensated") == 1
    for name in "abc":
        assert count(f"leaf-cleanup-{name}") == 1, name
    children = WorkflowRun.objects.filter(parent=run)
    assert not children.filter(status__in=WorkflowRun.LIVE).exists()


def test_fan_out_all_children_succeed():
    run = run_workflow(fan_out, False)
    pass_time(timedelta(minutes=1))
    run_until_idle()
    assert (fresh(run).status, run.result) == (Status.COMPLETED, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("signal", "outcome", "by"),
    [("approve", "approved", "ann"), ("reject", "rejected", "bob"), (None, "expired", None)],
)
def test_approval_decided_by_the_first_of_two_signals_or_its_deadline(signal, outcome, by):
    run = run_workflow(approval, 24)
    if signal is None:
        pass_time(timedelta(hours=24), run=run)
    else:
        send_signal(run, signal, by)
        with pytest.raises(durable.RunFinished):  # the other decision comes too late, and says so
            durable.signal(run.workflow_id, "approve" if signal == "reject" else "reject", "late")
    run = fresh(run)
    assert (run.status, run.result) == (Status.COMPLETED, {"outcome": outcome, "by": by})
    assert count(f"approval-{outcome}") == 1


def test_approval_cancelled_while_waiting_withdraws_once_and_ends_cancelled():
    run = run_workflow(approval, 24)
    run.cancel()
    run_until_idle()
    pass_time(timedelta(hours=48))
    assert fresh(run).status == Status.CANCELLED
    assert count("approval-withdrawn") == 1 and count("approval-expired") == 0


def test_greeting_language_set_by_update_checked_by_validator_read_by_query_released_by_signal():
    run = run_workflow(greeting)
    assert (run.query("language"), run.query("languages")) == ("en", ["en", "es", "fr"])
    assert send_update(run, "set_language", "fr") == "en", "the update replies with the previous language"
    with pytest.raises(durable.UpdateRejected, match="'de' is not supported"):
        send_update(run, "set_language", "de")
    assert run.query("language") == "fr"
    run = send_signal(run, "approve", {"name": "Ann"})
    assert (run.status, run.result, run.state) == (
        Status.COMPLETED,
        "Bonjour, monde",
        {"language": "fr", "approver": "Ann"},
    )
    assert run.query("language") == "fr", "a finished run is answered from its last state"
