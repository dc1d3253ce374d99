"""durable_signal, durable_cancel, durable_resume and durable_retry: thin calls, clear refusals."""

from __future__ import annotations

import pytest

from durable_django.models import WorkflowRun
from durable_django.testing import run_until_idle, run_workflow
from tests.testapp.models import Counter
from tests.testapp.workflows import collect, echo_workflow, repairable, saga

pytestmark = [pytest.mark.django_db]


def test_a_signal_with_a_json_payload_reaches_the_run(command):
    run = run_workflow(collect, 2, workflow_id="order-1")
    result = command("durable_signal", "order-1", "item", '{"carrier": "UPS"}')
    assert (result.status, result.out) == (0, "sent signal 'item' to order-1\n")
    command("durable_signal", "order-1", "item")  # no payload: null
    run_until_idle()
    run.refresh_from_db()
    assert run.result == [{"carrier": "UPS"}, None]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("order-1", "item", "{carrier: UPS}"), "argument payload: '{carrier: UPS}' is not JSON"),
        (("nobody", "item"), "no run has workflow_id 'nobody'"),
        (("done", "item"), "run 'done' is completed; signal 'item' would never be read"),
        (("order-1",), "the following arguments are required: name"),
    ],
)
def test_a_bad_signal_is_refused_with_a_clear_error(command, args, message):
    run_workflow(collect, 2, workflow_id="order-1")
    run_workflow(echo_workflow, 1, workflow_id="done")
    result = command("durable_signal", *args)
    assert result.status == 1
    assert message in result.err


def test_cancel_reports_each_run_and_fails_if_any_was_refused(command):
    run_workflow(saga, "a", workflow_id="saga-a")
    run_workflow(echo_workflow, 1, workflow_id="done")
    blocked = run_workflow(collect, 1, workflow_id="stuck")
    WorkflowRun.objects.filter(pk=blocked.pk).update(status=WorkflowRun.Status.BLOCKED)

    result = command("durable_cancel", "saga-a", "done", "stuck", "nobody")

    assert result.out.splitlines() == [
        "saga-a: cancel requested; Cancelled is raised at the run's current yield when a worker advances it",
        "stuck: cancelled",
    ]
    assert "done: run 'done' is completed; there is nothing left to cancel" in result.err
    assert "nobody: no run has workflow_id 'nobody'" in result.err
    assert result.status == 1 and "2 of 4 runs refused" in result.err
    run_until_idle()
    assert WorkflowRun.objects.get(workflow_id="saga-a").status == "cancelled"
    assert Counter.objects.get(name="a:refunded").value == 1


def test_retry_runs_the_failed_step_again_and_resume_continues_a_blocked_run(command):
    failed = run_workflow(repairable, "fix", workflow_id="repair-1")
    assert failed.status == "failed"
    Counter.objects.create(name="fix:fixed")

    result = command("durable_retry", "repair-1")
    assert (result.status, result.out) == (0, "repair-1: retrying (running)\n")
    run_until_idle()
    failed.refresh_from_db()
    assert failed.result == [1, "fixed", 1]

    blocked = run_workflow(collect, 1, workflow_id="stuck")
    WorkflowRun.objects.filter(pk=blocked.pk).update(status=WorkflowRun.Status.BLOCKED)
    assert command("durable_resume", "stuck").out == "stuck: resumed (running)\n"
    refused = command("durable_resume", "repair-1")
    assert refused.status == 1
    assert "repair-1: run 'repair-1' is completed; only blocked runs can be resumed." in refused.err


def test_retry_refuses_a_run_that_did_not_fail(command):
    run_workflow(collect, 1, workflow_id="live")
    result = command("durable_retry", "live")
    assert result.status == 1
    assert "only failed or blocked runs can be retried" in result.err
