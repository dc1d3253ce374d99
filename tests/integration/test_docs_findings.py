"""Bugs found while documenting the API, now fixed: each test pins the corrected behaviour."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import work_items
from durable_django.worker import runner
from tests.testapp.models import Counter
from tests.testapp.workflows import echo_workflow, parent, saga

Status = WorkflowRun.Status


def work_on(item: WorkItem) -> None:
    """What a worker does with one message: take the item, then run its steps inline."""
    held = work_items.take(item.pk)
    for _ in range(20):
        if held is None:
            return
        held = runner._run_step(held)


def advance_items(run: WorkflowRun) -> list[WorkItem]:
    return list(WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE))


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


def test_set_state_inside_a_group_is_refused_where_it_is_built():
    with pytest.raises(durable.InvalidRequest):
        durable.all_of(durable.set_state("x"), durable.sleep(timedelta(seconds=1)))


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
