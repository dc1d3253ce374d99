"""Updates: a command with a reply, transactional to send, answered once, refused with named errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

import durable_django as durable
from durable_django import updates
from durable_django.models import HistoryEntry, Update, WorkflowRun
from durable_django.testing import pass_time, run_until_idle, run_workflow, send_signal, send_update
from tests.testapp.conversations import (
    bad_replier,
    coupon_checkout,
    forgetful_renewer,
    two_updates_together,
    update_or_signal,
)

from .waiting import wait_status

Status = WorkflowRun.Status


def kinds(run: WorkflowRun) -> list[str]:
    return list(HistoryEntry.objects.filter(run=run).order_by("seq").values_list("kind", flat=True))


@pytest.mark.django_db
def test_the_workflow_replies_and_rejects_and_the_caller_gets_each_answer():
    run = run_workflow(coupon_checkout, 100)
    assert send_update(run, "apply_coupon", "WELCOME") == 90
    assert send_update(run, "apply_coupon", "SPRING") == 80
    with pytest.raises(durable.UpdateRejected, match="WELCOME is already applied") as caught:
        send_update(run, "apply_coupon", "WELCOME")
    assert caught.value.reason == "WELCOME is already applied"
    pass_time(timedelta(hours=1))
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, {"total": 80, "applied": ["WELCOME", "SPRING"]})
    assert kinds(run)[:4] == ["update", "state", "reply", "update"]


@pytest.mark.django_db
def test_a_validator_rejects_before_anything_is_sent_or_recorded():
    run = run_workflow(coupon_checkout, 100)
    before = kinds(run)
    with pytest.raises(durable.UpdateRejected, match="coupon codes are upper case, not 'welcome'"):
        send_update(run, "apply_coupon", "welcome")
    assert not Update.objects.filter(run=run).exists() and kinds(run) == before


@pytest.mark.django_db
def test_a_retried_update_with_the_same_id_returns_the_first_reply_and_applies_once():
    run = run_workflow(coupon_checkout, 100)
    assert send_update(run, "apply_coupon", "WELCOME", update_id="coupon-1") == 90
    assert send_update(run, "apply_coupon", "WELCOME", update_id="coupon-1") == 90
    assert Update.objects.filter(run=run).count() == 1
    assert durable.get_run(run.workflow_id).state == {"total": 90, "applied": ["WELCOME"]}


@pytest.mark.django_db
def test_an_update_to_a_finished_run_is_refused():
    run = run_workflow(coupon_checkout, 100)
    pass_time(timedelta(hours=1))
    with pytest.raises(durable.RunFinished, match="is completed; update 'apply_coupon' would never be answered"):
        send_update(run, "apply_coupon", "LATE")


@pytest.mark.django_db
def test_bad_payloads_and_names_are_refused_where_they_are_given():
    run = run_workflow(coupon_checkout, 100)
    with pytest.raises(durable.SerializationError, match="the payload of update 'apply_coupon'"):
        send_update(run, "apply_coupon", {1, 2})
    with pytest.raises(durable.InvalidRequest, match="update name ''"):
        send_update(run, "", "X")
    with pytest.raises(durable.InvalidRequest, match="needs an update name"):
        durable.wait_update("")
    with pytest.raises(durable.InvalidRequest, match=r"takes the request that `yield durable\.wait_update"):
        durable.reply("not a request", 1)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_update_inside_an_open_transaction_says_why_instead_of_waiting_on_itself():
    run = run_workflow(coupon_checkout, 100)
    with transaction.atomic(), pytest.raises(durable.InvalidRequest, match="inside an open transaction"):
        run.update("apply_coupon", "WELCOME", timeout=1)


@pytest.mark.parametrize(
    "how,error",
    [
        ("not-json", "the reply() value"),
        ("twice", "was already answered"),
        ("made-up", "which this run has not received"),
    ],
)
@pytest.mark.django_db
def test_a_bad_reply_fails_the_run_with_the_reason_and_the_caller_hears_it(how, error):
    run = run_workflow(bad_replier, how)
    if how == "twice":
        assert send_update(run, "ask") == 1, "the first answer stands"
    else:
        with pytest.raises(durable.RunFinished, match="ended failed without answering update 'ask'"):
            send_update(run, "ask")
    run.refresh_from_db()
    assert run.status == Status.FAILED and error in run.error["message"]


@pytest.mark.django_db
def test_reply_outside_workflow_code_says_where_it_may_be_called():
    with pytest.raises(durable.WorkflowContextUnavailable, match="outside workflow code"):
        durable.reply(durable.UpdateRequest("u", "n"), 1)


def test_on_a_real_worker_update_waits_for_the_reply_after_commit_and_start_and_update_finds_the_run(worker):
    first = coupon_checkout.using(workflow_id="coupons-1").start_and_update("apply_coupon", "WELCOME", args=(100,))
    assert first == 90
    again = coupon_checkout.using(workflow_id="coupons-1").start_and_update("apply_coupon", "SPRING", args=(100,))
    assert again == 80, "the existing run took the update"
    run = wait_status(durable.get_run("coupons-1"), Status.WAITING, timeout=30)
    with pytest.raises(durable.UpdateRejected, match="SPRING is already applied"):
        durable.update("coupons-1", "apply_coupon", "SPRING", timeout=30)
    assert run.update("apply_coupon", "SUMMER", timeout=30, update_id="summer") == 70
    assert run.update("apply_coupon", "SUMMER", timeout=30, update_id="summer") == 70, "a retry: the first reply"
    with pytest.raises(durable.UpdateRejected, match="three coupons at most"):
        run.update("apply_coupon", "AUTUMN", timeout=30)
    with pytest.raises(durable.UpdateTimeout, match="stays sent"):
        run.update("nobody_waits", 1, timeout=0.5)
    assert WorkflowRun.objects.filter(workflow_id="coupons-1").count() == 1


def test_aupdate_waits_for_the_reply_without_holding_djangos_sync_thread(worker):
    import asyncio

    from asgiref.sync import async_to_sync

    run = wait_status(coupon_checkout.start(100), Status.WAITING, timeout=30)

    async def scenario() -> tuple[object, bool, object]:
        reply = await run.aupdate("apply_coupon", "WELCOME", timeout=30)
        pending = asyncio.create_task(durable.aupdate(run.workflow_id, "nobody_waits", 1, timeout=3))
        await asyncio.sleep(0.5)  # sent; its reply is awaited now
        await durable.aget_run(run.workflow_id)  # Django's sync thread is free meanwhile
        still_waiting = not pending.done()
        try:
            await pending
        except durable.UpdateTimeout as error:
            return reply, still_waiting, error
        return reply, still_waiting, None

    reply, still_waiting, error = async_to_sync(scenario)()
    assert reply == 90 and still_waiting and isinstance(error, durable.UpdateTimeout)


def test_on_a_real_worker_an_update_races_a_signal_and_a_forgotten_update_is_rejected_at_continue_as_new(worker):
    run = wait_status(update_or_signal.start(), Status.WAITING, timeout=30)
    assert run.update("add", "tea", timeout=30) == 1
    assert run.update("add", "cake", timeout=30) == 2
    run.signal("stop")
    assert run.update("add", "late", timeout=30) == "served after the loop", "taken by the wait after the loop"
    run = wait_status(run, Status.COMPLETED, timeout=30)
    assert run.result == {"served": ["tea", "cake"], "ended_by": "stop", "late": True}

    renewer = wait_status(forgetful_renewer.start(0), Status.WAITING, timeout=30)
    with pytest.raises(durable.UpdateRejected, match="continued as new"):
        renewer.update("renew", "please", timeout=30)
    assert renewer.update("renew", "again", timeout=30) == "renewed by generation 1"


@pytest.mark.django_db(transaction=True)
def test_a_rejected_update_with_start_starts_nothing():
    with pytest.raises(durable.UpdateRejected, match="coupon codes are upper case"):
        coupon_checkout.using(workflow_id="coupons-rejected").start_and_update("apply_coupon", "lower", args=(100,))
    assert not WorkflowRun.objects.filter(workflow_id="coupons-rejected").exists()
    with pytest.raises(durable.InvalidRequest, match="inside an open transaction"), transaction.atomic():
        coupon_checkout.using(workflow_id="coupons-atomic").start_and_update("apply_coupon", "WELCOME", args=(100,))


# Updates where features meet: in groups, and across continue_as_new.


@pytest.mark.django_db
def test_an_update_wait_in_any_of_wins_with_the_update_and_the_caller_gets_the_reply():
    run = run_workflow(update_or_signal)
    assert send_update(run, "add", "tea") == 1
    assert send_update(run, "add", "cake") == 2
    run = send_signal(run, "stop")
    pass_time(timedelta(minutes=6))
    run.refresh_from_db()
    assert run.result == {"served": ["tea", "cake"], "ended_by": "stop", "late": False}


@pytest.mark.django_db
def test_an_update_wait_that_loses_its_race_takes_nothing_and_the_update_waits_for_the_next():
    run = run_workflow(update_or_signal)
    durable.signal(run, "stop")  # both arrive before the run advances: the signal's leaf is first
    update_id = updates.send(run, "add", "late tea")
    run_until_idle()
    run.refresh_from_db()
    assert run.result == {"served": [], "ended_by": "stop", "late": True}
    assert send_update(run, "add", "late tea", update_id=update_id) == "served after the loop"


@pytest.mark.django_db
def test_an_update_that_comes_after_its_wait_lost_to_a_timer_waits_in_the_inbox():
    run = run_workflow(update_or_signal)
    pass_time(timedelta(hours=1, minutes=1), run=run)  # quiet: the sleep wins, the last wait begins
    assert send_update(run, "add", "coffee") == "served after the loop"
    run.refresh_from_db()
    assert run.result == {"served": [], "ended_by": "quiet", "late": True}


@pytest.mark.django_db
def test_all_of_two_update_waits_takes_both_and_answers_each():
    run = run_workflow(two_updates_together)
    first = updates.send(run, "a", 1)
    assert send_update(run, "b", 2) == "b with 1"
    assert send_update(run, "a", 1, update_id=first) == "a with 2"
    assert durable.get_run(run.workflow_id).result == "together"


@pytest.mark.django_db
def test_all_of_an_update_wait_whose_partner_timed_out_can_still_reject_it():
    run = run_workflow(two_updates_together)
    first = updates.send(run, "a", 1)
    run_until_idle()
    pass_time(timedelta(hours=2), run=run)
    with pytest.raises(durable.UpdateRejected, match="b never came"):
        send_update(run, "a", 1, update_id=first)


@pytest.mark.django_db
def test_an_update_taken_and_not_answered_before_continue_as_new_is_rejected_not_left_hanging():
    run = run_workflow(forgetful_renewer, 0)
    with pytest.raises(durable.UpdateRejected, match="continued as new") as caught:
        send_update(run, "renew", "please")
    assert "renew" in caught.value.reason
    assert send_update(run, "renew", "again") == "renewed by generation 1"
