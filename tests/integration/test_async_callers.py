"""Async callers: the a-prefixed twins from async views under ASGI, with no sync_to_async in user code.

Each twin runs its sync sibling in Django's thread for sync code, so it commits on its own
(Django's ``transaction.atomic`` is sync-only): a run, its first work item and nothing else.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, override_settings

import durable_django as durable
from durable_django.models import WorkflowRun
from durable_django.testing import no_broker, run_until_idle
from tests.testapp.workflows import double, echo_workflow, inspectable, nap, two_names

from .waiting import wait_status

pytestmark = pytest.mark.django_db(transaction=True)
Status = WorkflowRun.Status


@pytest.mark.broker
@override_settings(ROOT_URLCONF="tests.asgi_views")
def test_an_async_view_starts_a_run_and_awaits_its_result_under_asgi(worker):
    response = async_to_sync(AsyncClient().get)("/double/21/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"] == {"value": 21, "doubled": 42, "extra": {}}
    run = WorkflowRun.objects.get(workflow_id=body["workflow_id"])
    assert (run.status, run.attributes) == (Status.COMPLETED, {"source": "api"})


@pytest.mark.broker
@override_settings(ROOT_URLCONF="tests.asgi_views")
def test_async_views_find_signal_and_query_a_run(worker):
    client = AsyncClient()
    started = async_to_sync(client.get)("/inspectable/7/").json()
    run = wait_status(WorkflowRun.objects.get(workflow_id=started["workflow_id"]), Status.WAITING, timeout=30)
    inspected = async_to_sync(client.get)(f"/inspect/{run.workflow_id}/").json()
    assert inspected["locals"]["stage"] == "waiting for shipment" and inspected["status"] == Status.WAITING
    shipped = async_to_sync(client.get)(f"/ship/{run.workflow_id}/?carrier=DHL").json()
    assert shipped["result"] == [14, {"carrier": "DHL"}]


@override_settings(ROOT_URLCONF="tests.asgi_views")
def test_an_async_view_that_cannot_wait_answers_202_and_the_run_goes_on():
    with no_broker():
        response = async_to_sync(AsyncClient().get)("/double/4/?timeout=0.2")
    assert response.status_code == 202
    run = WorkflowRun.objects.get(workflow_id=response.json()["workflow_id"])
    run_until_idle()
    run.refresh_from_db()
    assert run.result["doubled"] == 8


def test_astart_is_idempotent_by_workflow_id_and_refuses_bad_input_at_the_call_site():
    async def go() -> tuple[WorkflowRun, WorkflowRun]:
        first = await echo_workflow.astart(1, workflow_id="async-once")
        again = await echo_workflow.using(workflow_id="async-once").astart(1)
        return first, again

    with no_broker():
        first, again = asyncio.run(go())
    assert first.pk == again.pk
    with pytest.raises(durable.SerializationError):
        asyncio.run(echo_workflow.astart(object()))


def test_asignal_acancel_aresume_and_the_module_twins():
    with no_broker():
        waiting = two_names.start(workflow_id="async-two")
        sleeping = nap.start(3600, workflow_id="async-nap")
        run_until_idle()

        async def go() -> None:
            found = await durable.aget_run("async-two")
            await found.asignal("a", 1)
            await durable.asignal("async-two", "b", 2)
            await durable.acancel("async-nap")

        asyncio.run(go())
        run_until_idle()
    waiting.refresh_from_db()
    sleeping.refresh_from_db()
    assert (waiting.status, waiting.result) == (Status.COMPLETED, [1, 2])
    assert sleeping.status == Status.CANCELLED
    with pytest.raises(durable.RunFinished):
        asyncio.run(sleeping.acancel())
    with pytest.raises(durable.RunNotFound):
        asyncio.run(durable.aget_run("no-such-run"))
    with pytest.raises(durable.InvalidRunState):
        asyncio.run(durable.aresume("async-two"))


def test_aquery_and_the_module_aquery_replay_without_writing():
    with no_broker():
        run = inspectable.start(3, workflow_id="async-inspect")
        run_until_idle()
    assert asyncio.run(run.aquery())["stage"] == "waiting for shipment"
    assert asyncio.run(durable.aquery("async-inspect"))["charge"] == 6


def test_a_step_enqueued_from_async_code_runs():
    with no_broker():
        run = asyncio.run(double.aenqueue(5))
        run_until_idle()
    run.refresh_from_db()
    assert run.result == 10


def test_astart_many_aretry_and_afork_from_async_code():
    from tests.testapp.models import Counter
    from tests.testapp.workflows import repairable

    with no_broker():
        many = asyncio.run(echo_workflow.astart_many([(1,), (2,)]))
        failed = repairable.start("async-repair")
        run_until_idle()
        assert {run.pk for run in many} == set(
            WorkflowRun.objects.filter(pk__in=[r.pk for r in many]).values_list("pk", flat=True)
        )
        failed.refresh_from_db()
        assert failed.status == Status.FAILED
        Counter.objects.create(name="async-repair:fixed")
        forked = asyncio.run(durable.afork(failed.workflow_id, 1))
        asyncio.run(durable.aretry(failed))
        run_until_idle()
    for run in (*many, failed, forked):
        run.refresh_from_db()
    assert [run.result["doubled"] for run in many] == [2, 4]
    # Both reuse the first step's recorded outcome (1), then share the "after" counter: 1 and 2.
    assert (failed.status, forked.status) == (Status.COMPLETED, Status.COMPLETED)
    assert sorted([failed.result, forked.result]) == [[1, "fixed", 1], [1, "fixed", 2]]
    assert forked.workflow_id.startswith(f"{failed.workflow_id}.fork-")


@pytest.mark.broker
def test_astart_and_update_starts_the_run_and_awaits_the_reply(worker):
    from tests.testapp.conversations import coupon_checkout

    checkout = coupon_checkout.using(workflow_id="async-coupons")
    assert asyncio.run(checkout.astart_and_update("apply_coupon", "WELCOME", args=(100,))) == 90
    assert asyncio.run(checkout.astart_and_update("apply_coupon", "SPRING", args=(100,))) == 80  # the same run


def test_a_schedule_is_paused_resumed_and_triggered_from_async_code():
    from datetime import timedelta

    from durable_django.models import Schedule
    from durable_django.testing import pass_time

    from .schedules import make, tick_ids

    row = make("async-schedule", every=timedelta(hours=1))
    asyncio.run(row.apause())
    pass_time(timedelta(hours=3))
    assert tick_ids("async-schedule") == []
    asyncio.run(row.aresume())
    assert not Schedule.objects.get(pk=row.pk).paused
    run = asyncio.run(row.atrigger())
    assert run is not None and run.workflow_id.startswith("async-schedule@manual-")


def test_a_runs_subject_is_loaded_from_async_code():
    from example_project.shop.models import Order

    order = Order.objects.create(amount_cents=1999)
    run = echo_workflow.using(subject=order).start(1)
    assert asyncio.run(run.aget_subject()) == order
    assert asyncio.run(echo_workflow.start(2).aget_subject()) is None
