"""The example checkout's paths on a real worker: shipped, not shipped in time, cancelled while it waits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.testing import advance_time
from example_project.shop import payments
from example_project.shop.models import Order
from example_project.shop.workflows import checkout
from tests.factories import OrderFactory

from .waiting import wait_finished, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.usefixtures("ledger")]
Status = WorkflowRun.Status
Entry = HistoryEntry.Status
COOLING_OFF = 3600  # the checkout's default, in seconds: the tests move time on with advance_time()


def start_checkout() -> tuple[Order, WorkflowRun]:
    order = OrderFactory()
    with transaction.atomic():
        run = checkout.start(order.pk, order.amount_cents, workflow_id=f"order-{order.pk}")
    return order, run


def waiting_at(run: WorkflowRun, kind: str, stage: str) -> WorkflowRun:
    """Wait until the run waits on a pending ``sleep`` or ``signal`` entry and publishes ``stage``."""

    def there() -> WorkflowRun | None:
        fresh = WorkflowRun.objects.get(pk=run.pk)
        pending = HistoryEntry.objects.filter(run=run, kind=kind, status=Entry.SCHEDULED).exists()
        return fresh if pending and fresh.status == Status.WAITING and fresh.state == stage else None

    return wait_for(there, timeout=20, what=f"{run.workflow_id} to wait at its {kind} ({stage})")


def assert_refunded_once(order: Order) -> dict:
    order.refresh_from_db()
    (charge,) = payments.ledger()
    (refund,) = payments.refunds()
    assert refund["charge_id"] == charge["charge_id"] == order.charge_id
    assert refund["amount_cents"] == order.amount_cents
    assert (order.status, order.refund_id, order.refund_writes) == (Order.Status.REFUNDED, refund["refund_id"], 1)
    assert order.paid_writes == 1 and order.carrier == ""
    return refund


def test_a_shipped_signal_sent_during_the_cooling_off_waits_in_the_inbox_and_ships(worker):
    order, run = start_checkout()
    waiting_at(run, "sleep", "cooling off")
    run.signal("shipped", {"carrier": "DHL"})
    advance_time(timedelta(minutes=59))  # not yet: the signal waits for the sleep to end
    run = waiting_at(run, "sleep", "cooling off")
    advance_time(timedelta(minutes=1))
    (run,) = wait_finished([run], timeout=20)
    order.refresh_from_db()
    assert (run.status, run.state) == (Status.COMPLETED, "awaiting shipment")
    assert run.result == {"charge": order.charge_id, "carrier": "DHL"}
    assert (order.status, order.carrier, order.paid_writes, order.refund_writes) == (Order.Status.SHIPPED, "DHL", 1, 0)
    assert payments.refunds() == []
    assert not WorkItem.objects.exists()


def test_an_order_not_shipped_in_time_is_refunded_and_the_run_completes(worker):
    order, run = start_checkout()
    waiting_at(run, "sleep", "cooling off")
    advance_time(timedelta(seconds=COOLING_OFF))
    waiting_at(run, "signal", "awaiting shipment")
    advance_time(timedelta(days=6, hours=23))  # a timeout never fires early
    run = waiting_at(run, "signal", "awaiting shipment")
    advance_time(timedelta(hours=1))
    (run,) = wait_finished([run], timeout=20)
    refund = assert_refunded_once(order)
    assert run.status == Status.COMPLETED
    assert run.result == {"charge": order.charge_id, "refund": refund["refund_id"]}
    wait = HistoryEntry.objects.get(run=run, kind="signal")
    assert wait.finished_at >= wait.fire_at
    assert not WorkItem.objects.exists()


def test_a_cancel_during_the_cooling_off_refunds_and_the_run_ends_cancelled(worker):
    order, run = start_checkout()
    waiting_at(run, "sleep", "cooling off")
    run.cancel()
    (run,) = wait_finished([run], timeout=20)
    assert_refunded_once(order)
    assert (run.status, run.error["type"]) == (Status.CANCELLED, "durable_django.exceptions.Cancelled")
    assert HistoryEntry.objects.get(run=run, kind="sleep").status == Entry.CANCELLED
    assert not HistoryEntry.objects.filter(run=run, kind="signal").exists()
    assert not WorkItem.objects.exists(), "the cancelled sleep left its timer behind"


def test_a_cancel_while_awaiting_shipment_refunds_and_a_late_signal_is_refused(worker):
    order, run = start_checkout()
    waiting_at(run, "sleep", "cooling off")
    advance_time(timedelta(seconds=COOLING_OFF))
    waiting_at(run, "signal", "awaiting shipment")
    run.cancel()
    (run,) = wait_finished([run], timeout=20)
    assert_refunded_once(order)
    assert run.status == Status.CANCELLED
    assert HistoryEntry.objects.get(run=run, kind="signal").status == Entry.CANCELLED
    with pytest.raises(durable.RunFinished, match="is cancelled; signal 'shipped' would never be read"):
        run.signal("shipped", {"carrier": "UPS"})
    assert not WorkItem.objects.exists()


def test_a_cancel_that_lands_while_the_card_is_being_charged_still_refunds_it(worker):
    worker.env["PAYMENTS_LATENCY"] = "2"  # a slow provider: the reply comes 1 s after the charge is made
    worker.kill()
    worker.start()
    order, run = start_checkout()
    wait_for(payments.ledger, timeout=20, interval=0.01, what="the provider to charge the card")
    run.cancel()
    (run,) = wait_finished([run], timeout=20)
    assert run.status == Status.CANCELLED
    assert len(payments.ledger()) == 1
    assert len(payments.refunds()) == 1, "the card was charged and never refunded"
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
