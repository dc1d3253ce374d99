"""The seed scenario under fire: checkouts complete while worker processes are SIGKILLed."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
from django.db import transaction

from durable_django.models import WorkflowRun, WorkItem
from example_project.processes import CeleryWorker
from example_project.shop import payments
from example_project.shop.models import Order
from example_project.shop.workflows import checkout
from tests.factories import OrderFactory

from .waiting import wait_finished

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


def kill_a_step_in_flight(worker: CeleryWorker) -> bool:
    """SIGKILL a pool process that holds a step's lease right now; True if one was hit."""
    children = set(worker.children())
    owners = WorkItem.objects.filter(kind=WorkItem.Kind.STEP, lease_expires_at__isnull=False).values_list(
        "owner", flat=True
    )
    busy = [pid for pid in (int(owner.rsplit(":", 1)[1]) for owner in owners if owner) if pid in children]
    return bool(busy) and worker.kill_child(random.choice(busy))


@pytest.mark.usefixtures("ledger")
def test_100_checkouts_complete_once_each_while_workers_are_sigkilled(worker):
    random.seed(2)
    orders = OrderFactory.create_batch(100)
    runs = []
    for order in orders:
        with transaction.atomic():
            runs.append(checkout.start(order.pk, order.amount_cents, workflow_id=f"order-{order.pk}"))

    kills = 0
    deadline = time.monotonic() + 60
    while kills < 6 and time.monotonic() < deadline:
        time.sleep(random.uniform(0.2, 0.6))
        kills += kill_a_step_in_flight(worker)
    worker.kill()  # the main process too, with its prefetched messages
    worker.start()
    kills += 1

    runs = wait_finished(runs, timeout=90)
    assert kills >= 5, f"only {kills} kills landed mid-step"
    assert Counter(run.status for run in runs) == {WorkflowRun.Status.COMPLETED: 100}

    ledger = payments.ledger()
    charges_per_order = Counter(charge["reference"] for charge in ledger)
    assert charges_per_order == {f"order-{order.pk}": 1 for order in orders}, "an order was charged twice"
    retried = [charge for charge in ledger if charge["requests"] > 1]
    assert retried, "no charge was retried: the kills did not land between the charge and its checkpoint"

    by_reference = {charge["reference"]: charge for charge in ledger}
    for order in Order.objects.all():
        run = WorkflowRun.objects.get(workflow_id=f"order-{order.pk}")
        assert order.status == Order.Status.PAID
        assert order.paid_writes == 1, f"{order} was marked paid {order.paid_writes} times"
        assert order.charge_id == by_reference[f"order-{order.pk}"]["charge_id"] == run.result["charge"]
    assert not WorkItem.objects.exists()
