"""Code missing from a process blocks a run (resumably) instead of failing it or losing it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import F

from durable_django.core import registry
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import outbox, work_items
from durable_django.worker import runner
from tests.testapp.workflows import echo_workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_messages")]
Status = WorkflowRun.Status
GHOST_INPUT = '{"args":[2],"kwargs":{}}'
GHOST_INPUT = '{"args":[2],"kwargs":{}}'


def advance_item(run: WorkflowRun) -> int:
    return WorkItem.objects.get(run=run, kind=WorkItem.Kind.ADVANCE).pk


def test_a_run_of_an_unknown_workflow_blocks_and_resumes_once_the_code_exists(monkeypatch):
    # A run of code this process does not have, as a newer release would have started it.
    run = WorkflowRun.objects.create(workflow_id="ghost", workflow_name="tests.ghost", input_json=GHOST_INPUT)

    with transaction.atomic():
        outbox.wake("default", run.pk)
    assert work_items.take(advance_item(run)) is None
    run.refresh_from_db()
    assert run.status == Status.BLOCKED
    assert "no workflow named 'tests.ghost' is registered" in run.error["message"]

    monkeypatch.setitem(registry._workflows, "tests.ghost", echo_workflow)  # the fix is deployed
    run.resume()
    held = work_items.take(advance_item(run))
    assert held is not None and held.step == "tests.double"
    runner._run_step(held)
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, {"value": 2, "doubled": 4, "extra": {}})


def test_a_step_this_worker_lacks_is_parked_without_an_attempt_then_blocks_after_the_grace(monkeypatch):
    run = echo_workflow.start(3)
    held = work_items.take(advance_item(run))
    assert held is not None
    monkeypatch.delitem(registry._steps, "tests.double")  # this worker runs an older release

    runner._run_step(held)
    item = WorkItem.objects.get(run=run, kind=WorkItem.Kind.STEP)
    entry = HistoryEntry.objects.get(run=run, seq=0)
    run.refresh_from_db()
    assert item.lease_expires_at is None and item.dispatched_at is None
    assert entry.attempts == 0
    assert "no step named 'tests.double'" in entry.error_json
    assert run.status == Status.RUNNING, "a step parked within the grace period does not block its run"

    HistoryEntry.objects.filter(pk=entry.pk).update(scheduled_at=F("scheduled_at") - timedelta(hours=1))
    WorkItem.objects.filter(pk=item.pk).update(available_at=F("available_at") - timedelta(minutes=1))
    again = work_items.take(item.pk)
    assert again is not None and again.attempt == 1
    runner._run_step(again)
    run.refresh_from_db()
    assert run.status == Status.BLOCKED

    monkeypatch.undo()  # the new release reaches this worker
    run.resume()
    item.refresh_from_db()
    assert item.available_at <= run.updated_at + timedelta(seconds=1)
    held = work_items.take(item.pk)
    assert held is not None
    runner._run_step(held)
    run.refresh_from_db()
    assert run.status == Status.COMPLETED
