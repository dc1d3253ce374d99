"""Runs executed by a real Celery worker process, on PostgreSQL and Redis."""

from __future__ import annotations

import pytest
from django.db import transaction

from durable_django.models import HistoryEntry, WorkflowRun
from tests.testapp.models import Counter
from tests.testapp.workflows import bump_twice, chain, echo_workflow, flaky_workflow, routed_workflow

from .waiting import wait_finished

pytestmark = [pytest.mark.broker]


def test_a_started_workflow_runs_to_completion_on_a_worker(worker):
    run = echo_workflow.start(21, note="hi")
    (run,) = wait_finished([run], timeout=20)
    assert run.status == WorkflowRun.Status.COMPLETED
    assert run.result == {"value": 21, "doubled": 42, "extra": {"note": "hi"}}


def test_a_long_chain_records_every_step_once(worker):
    run = chain.start(30)
    (run,) = wait_finished([run], timeout=30)
    assert run.status == WorkflowRun.Status.COMPLETED
    steps = HistoryEntry.objects.filter(run=run)
    assert steps.count() == 30
    assert set(steps.values_list("attempts", flat=True)) == {1}


def test_atomic_steps_write_exactly_once(worker):
    run = bump_twice.start("atomic")
    (run,) = wait_finished([run], timeout=20)
    assert run.result == [1, 2]
    assert Counter.objects.get(name="atomic").value == 2


def test_a_failing_step_is_retried_then_succeeds(worker):
    run = flaky_workflow.start(2)
    (run,) = wait_finished([run], timeout=20)
    assert run.result == {"succeeded_on": 3}


def test_a_step_routed_to_another_queue_runs_there(worker):
    run = routed_workflow.start()
    (run,) = wait_finished([run], timeout=20)
    assert run.result == ["routed", 4]


def test_a_start_in_a_rolled_back_transaction_leaves_nothing_and_runs_nothing(worker):
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        bump_twice.start("rolled-back", workflow_id="rolled-back")
        raise Abort
    canary = bump_twice.start("canary")
    wait_finished([canary], timeout=20)
    assert not WorkflowRun.objects.filter(workflow_id="rolled-back").exists()
    assert not Counter.objects.filter(name="rolled-back").exists()
    assert Counter.objects.get(name="canary").value == 2
