"""Step behaviour on a real worker: failures, timeouts, crashes, keys, results and unknown code."""

from __future__ import annotations

import pytest

from durable_django.models import HistoryEntry, WorkflowRun
from tests.testapp.workflows import (
    bad_result_workflow,
    crash_workflow,
    double,
    keys,
    slow_workflow,
    uncaught_workflow,
)

from .waiting import wait_finished

pytestmark = [pytest.mark.broker]
Status = WorkflowRun.Status


def test_an_uncaught_step_failure_fails_the_run_with_error_and_traceback(worker):
    run = uncaught_workflow.start()
    (run,) = wait_finished([run], timeout=20)
    assert run.status == Status.FAILED
    assert run.error["type"] == "durable_django.exceptions.StepFailed"
    assert "RuntimeError: attempt 3 failed" in run.error["message"]
    assert "Traceback" in run.error["traceback"]
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 3


def test_a_step_over_its_timeout_is_interrupted_and_retried(worker):
    run = slow_workflow.start(5)
    (run,) = wait_finished([run], timeout=20)
    assert run.result == "durable_django.exceptions.StepTimeout"
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 2


def test_a_step_whose_worker_dies_on_every_attempt_fails_after_its_last_attempt(worker):
    run = crash_workflow.start()
    (run,) = wait_finished([run], timeout=30)
    assert run.result == {"gave_up": "durable_django.exceptions.WorkerLost"}
    entry = HistoryEntry.objects.get(run=run, seq=0)
    assert entry.status == HistoryEntry.Status.FAILED
    assert "died before it reported" in entry.error_json


def test_a_non_json_step_result_fails_the_step_naming_the_path(worker):
    run = bad_result_workflow.start()
    (run,) = wait_finished([run], timeout=20)
    assert run.status == Status.FAILED
    assert "the result of step 'tests.bad_result'['when'] is a builtins.set" in run.error["message"]
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 1, "a serialization error is not retried"


def test_idempotency_keys_are_per_run_and_position(worker):
    run = keys.start()
    (run,) = wait_finished([run], timeout=20)
    first, second = run.result
    assert first["key"] == f"{run.pk.hex}-0"
    assert second["key"] == f"{run.pk.hex}-1"


def test_enqueue_runs_one_step_as_its_own_run(worker):
    run = double.enqueue(21)
    (run,) = wait_finished([run], timeout=20)
    assert run.result == 42
    assert run.workflow_name == "durable_django.enqueue:tests.double"
