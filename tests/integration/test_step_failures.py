"""What a failing step leaves behind: unlimited retries within the backoff cap, and its own traceback."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.models import HistoryEntry
from durable_django.testing import pass_time, run_workflow
from tests.testapp.workflows import uncaught_workflow

pytestmark = pytest.mark.django_db


@durable.step(
    name="tests.persistent",
    retry=durable.RetryPolicy(
        max_attempts=None, initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=4)
    ),
)
def persistent(fail_times: int) -> int:
    attempt = durable.step_context().attempt
    if attempt <= fail_times:
        raise ConnectionError(f"attempt {attempt}: provider down")
    return attempt


@durable.workflow(name="tests.persistent_workflow")
def persistent_workflow(fail_times: int):
    return (yield persistent(fail_times))


def test_a_step_with_unlimited_attempts_retries_past_any_count_with_capped_waits():
    run = run_workflow(persistent_workflow, 12)
    # 1 + 2 + 4 s, then 4 s per attempt (the cap): 12 failures need 3 + 4 * 9 = 43 s at least.
    pass_time(timedelta(seconds=40))
    run.refresh_from_db()
    assert run.status == durable.WorkflowRun.Status.RUNNING, "retried before its backoff was over"
    pass_time(timedelta(seconds=10))
    run.refresh_from_db()
    assert (run.status, run.result) == (durable.WorkflowRun.Status.COMPLETED, 13)
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 13


def test_the_runs_error_carries_the_steps_own_traceback_before_the_workflows():
    run = run_workflow(uncaught_workflow)
    pass_time(timedelta(seconds=5))
    run.refresh_from_db()
    trace = run.error["traceback"]
    raised_in_step = 'raise KeyError("missing") if kind == "key" else RuntimeError(f"attempt {attempt} failed")'
    assert raised_in_step in trace, "where the step raised is missing from the run's traceback"
    assert "The above exception was the direct cause of the following exception" in trace
    assert trace.index(raised_in_step) < trace.index("yield flaky(99)"), "the step's frames come first, as a cause"
    step_error = HistoryEntry.objects.get(run=run, seq=0).error_json
    assert "raise KeyError" in step_error and "yield flaky(99)" not in step_error, "the step's error is its own"
