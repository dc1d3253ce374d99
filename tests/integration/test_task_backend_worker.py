"""django.tasks on real Celery workers: transactional enqueue, kills mid-task, lost messages."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from durable_django.models import LostAttempt, WorkflowRun, WorkItem
from durable_django.store import outbox
from durable_django.store.owners import Owner
from durable_django.task_backend.compat import TaskResultDoesNotExist, TaskResultStatus
from example_project.shop import payments
from example_project.shop.models import Order
from tests.testapp.tasks import add, charge_order, routed_task

from .waiting import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def finished(result, *, timeout: float):
    def done():
        result.refresh()
        return result.is_finished

    wait_for(done, timeout=timeout, what=f"task {result.id} to finish")
    return result


def test_a_task_enqueued_in_a_rolled_back_transaction_never_runs(worker):
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(amount_cents=100)
        result = add.enqueue(1, 2)
        raise RuntimeError("rolled back")
    time.sleep(3)  # a worker and its sweeper had the time to find anything there was
    assert not WorkflowRun.objects.exists() and not WorkItem.objects.exists()
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result(result.id)


def test_a_committed_task_runs_on_a_worker(worker):
    with transaction.atomic():
        order = Order.objects.create(amount_cents=40)
        result = add.enqueue(order.amount_cents, 2)
    assert finished(result, timeout=30).return_value == 42
    assert result.worker_ids == ["unrecorded"] and result.attempts == 1


def test_a_task_routed_to_another_queue_runs_on_a_worker_that_consumes_it(worker):
    result = routed_task.enqueue()
    assert finished(result, timeout=30).return_value == "ran on special"


@pytest.mark.usefixtures("ledger")
def test_a_task_whose_worker_is_killed_mid_task_finishes_once(worker):
    result = charge_order.enqueue("order-1", 1999)

    def charged_and_running() -> int | None:
        leased = WorkItem.objects.leased().filter(run__workflow_id=result.id, kind=WorkItem.Kind.STEP)
        owner = leased.values_list("owner", flat=True).first()
        holder = Owner.parse(owner) if owner else None
        return holder.pid if holder is not None and payments.ledger() else None

    pid = wait_for(charged_and_running, timeout=30, what="the charge made, its answer not yet recorded")
    assert worker.kill_child(pid), "the pool process running the task was already gone"

    finished(result, timeout=60)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.attempts == 2
    [lost] = LostAttempt.objects.filter(entry__run__workflow_id=result.id)
    holder = Owner.parse(lost.owner)
    assert lost.attempt == 1 and holder is not None and holder.pid == pid, "the killed attempt stays in the timeline"
    assert result.worker_ids[0] == f"{holder.host}:{pid}", "Django's worker_ids name the killed attempt's worker"
    [charge] = payments.ledger()
    assert charge["requests"] == 2, "the retry sent the same idempotency key"
    assert result.return_value == charge["charge_id"]


def test_a_task_whose_message_was_lost_runs_once_the_sweeper_resends_it(worker, monkeypatch):
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)  # this process's messages vanish
    result = add.enqueue(20, 1)
    assert finished(result, timeout=30).return_value == 21
