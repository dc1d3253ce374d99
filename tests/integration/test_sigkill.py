"""The seed scenario under fire: checkouts complete while worker processes are SIGKILLed.

100 checkouts are charged while pool processes, then the whole worker, are killed mid-step.
Then, during their cooling-off period, 80 orders are shipped (the signal waits in the inbox)
and 10 are cancelled, with more kills while the refunds run; once the cooling-off period
has passed, 5 more are cancelled while they wait for shipment and 5 are never shipped.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem, idempotency_key
from durable_django.store.owners import Owner
from durable_django.testing import advance_time
from example_project.shop import payments
from example_project.shop.models import Order
from example_project.shop.workflows import checkout
from tests.factories import OrderFactory
from tests.support.processes import CeleryWorker

from .waiting import wait_finished, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.broker]
COOLING_OFF = 3600  # the default; the test moves time on with advance_time()
CARRIERS = ("UPS", "DHL", "FedEx", "GLS")


def kill_a_step_in_flight(worker: CeleryWorker, already_made: set[str] | None = None) -> bool:
    """SIGKILL a pool process that holds a step's lease right now; True if one was hit.

    With ``already_made``, only a step whose idempotency key is in it: its effect is done, its reply not recorded.
    """
    children = set(worker.children())
    items = WorkItem.objects.filter(kind=WorkItem.Kind.STEP, lease_expires_at__isnull=False).exclude(owner="")
    busy = [
        pid
        for owner, run_id, generation, seq in items.values_list("owner", "run_id", "run__generation", "seq")
        if (pid := owner_pid(owner)) in children
        and (already_made is None or idempotency_key(run_id, generation, seq) in already_made)
    ]
    return bool(busy) and worker.kill_child(random.choice(busy))


def waiting_at(runs: list[WorkflowRun], kind: str) -> bool:
    """Every run waits on a pending ``sleep`` or ``signal`` entry."""
    pending = HistoryEntry.objects.filter(run__in=runs, kind=kind, status=HistoryEntry.Status.SCHEDULED)
    return pending.count() == len(runs)


@pytest.mark.usefixtures("ledger")
def test_100_checkouts_complete_once_each_while_workers_are_sigkilled(worker):
    random.seed(2)
    orders = OrderFactory.create_batch(100)
    runs = []
    for order in orders:
        with transaction.atomic():
            runs.append(checkout.start(order.pk, order.amount_cents, COOLING_OFF, workflow_id=f"order-{order.pk}"))

    kills = 0
    deadline = time.monotonic() + 60
    while kills < 6 and time.monotonic() < deadline:
        time.sleep(random.uniform(0.2, 0.6))
        kills += kill_a_step_in_flight(worker)
    worker.kill()  # the main process too, with its prefetched messages
    worker.start()
    kills += 1
    wait_for(lambda: waiting_at(runs, "sleep"), timeout=90, what="every order paid and cooling off")
    assert kills >= 5, f"only {kills} kills landed mid-step"

    # During the cooling-off period: ship 80 (the signal waits in the inbox), cancel 10.
    shipped, cancelled_cooling, cancelled_waiting, unshipped = runs[:80], runs[80:90], runs[90:95], runs[95:]
    carriers = {run.workflow_id: CARRIERS[index % len(CARRIERS)] for index, run in enumerate(shipped)}
    for run in shipped:
        run.signal("shipped", {"carrier": carriers[run.workflow_id]})
    for run in cancelled_cooling:
        run.cancel()
    refund_kills = 0
    deadline = time.monotonic() + 10
    while refund_kills < 2 and time.monotonic() < deadline:
        refund_kills += kill_a_step_in_flight(worker, {refund["idempotency_key"] for refund in payments.refunds()})
        time.sleep(0.01)
    assert refund_kills, "no kill landed between a refund and its checkpoint"
    wait_finished(cancelled_cooling, timeout=60)

    # The cooling-off period ends: the shipped orders ship; cancel 5 of the others while they wait for shipment.
    advance_time(timedelta(seconds=COOLING_OFF))
    wait_finished(shipped, timeout=60)
    wait_for(lambda: waiting_at(cancelled_waiting + unshipped, "signal"), timeout=30, what="10 awaiting shipment")
    for run in cancelled_waiting:
        run.cancel()
    wait_finished(cancelled_waiting, timeout=60)
    # Nobody ships the last 5: after a week they are refunded.
    advance_time(timedelta(days=7))
    runs = wait_finished(runs, timeout=60)

    expected = {run.workflow_id: WorkflowRun.Status.COMPLETED for run in shipped + unshipped}
    expected.update({run.workflow_id: WorkflowRun.Status.CANCELLED for run in cancelled_cooling + cancelled_waiting})
    assert {run.workflow_id: run.status for run in runs} == expected
    landed = HistoryEntry.objects.filter(status=HistoryEntry.Status.CANCELLED).values_list("kind", flat=True)
    assert Counter(landed) == {"sleep": 10, "signal": 5}, "a cancel landed elsewhere than where the run waited"

    ledger = payments.ledger()
    charges_per_order = Counter(charge["reference"] for charge in ledger)
    assert charges_per_order == {f"order-{order.pk}": 1 for order in orders}, "an order was charged twice"
    retried = [charge for charge in ledger if charge["requests"] > 1]
    assert retried, "no charge was retried: the kills did not land between the charge and its checkpoint"
    refunds = payments.refunds()
    refund_of = {refund["charge_id"]: refund for refund in refunds}
    assert len(refunds) == len(refund_of) == 20, "a charge was refunded twice, or an order not refunded"
    assert any(refund["requests"] > 1 for refund in refunds), "no refund was retried after its worker was killed"

    by_reference = {charge["reference"]: charge for charge in ledger}
    results = {run.workflow_id: run.result for run in runs}
    for order in Order.objects.all():
        ref = f"order-{order.pk}"
        assert order.paid_writes == 1, f"{order} was marked paid {order.paid_writes} times"
        assert order.charge_id == by_reference[ref]["charge_id"]
        if ref in carriers:
            assert (order.status, order.carrier, order.refund_writes) == (Order.Status.SHIPPED, carriers[ref], 0)
            assert results[ref] == {"charge": order.charge_id, "carrier": carriers[ref]}
            continue
        refund = refund_of[order.charge_id]
        assert (order.status, order.refund_id, order.refund_writes) == (Order.Status.REFUNDED, refund["refund_id"], 1)
        assert refund["amount_cents"] == order.amount_cents
        if expected[ref] == WorkflowRun.Status.COMPLETED:  # not shipped in time
            assert results[ref] == {"charge": order.charge_id, "refund": order.refund_id}
    assert not WorkItem.objects.exists()


def owner_pid(owner: str) -> int:
    """The pid in a lease's owner (``host:pid:namespace:boot:started``)."""
    parsed = Owner.parse(owner)
    assert parsed is not None, f"not an owner: {owner!r}"
    return parsed.pid
