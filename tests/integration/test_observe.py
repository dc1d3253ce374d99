"""Django signals, log lines and OpenTelemetry spans about runs and steps, sent after commit."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from django.db import transaction

from durable_django import signals
from durable_django.models import WorkflowRun, WorkItem
from durable_django.store import observe
from durable_django.store.leases import db_now_plus
from durable_django.testing import run_until_idle
from tests.testapp.workflows import echo_workflow, flaky_workflow, saga, uncaught_workflow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_messages")]
ALL = ("run_started", "run_completed", "run_failed", "run_cancelled", "run_blocked", "step_failed")


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict]]]:
    events: list[tuple[str, dict]] = []
    receivers = {}
    for name in ALL:

        def receiver(sender, signal_name=name, **kwargs):
            kwargs.pop("signal")
            events.append((signal_name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield events
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def work_until_idle(run: WorkflowRun) -> WorkflowRun:
    """Run everything due here; wait out retry backoffs under a second (bounded)."""
    deadline = time.monotonic() + 10
    soon = WorkItem.objects.filter(run=run, available_at__lte=db_now_plus(1))
    while (run_until_idle() or soon.exists()) and time.monotonic() < deadline:
        time.sleep(0.01)
    run.refresh_from_db()
    return run


def test_a_completed_run_sends_started_then_completed_with_its_ids(received, caplog):
    caplog.set_level(logging.INFO, logger="durable_django")
    run = work_until_idle(echo_workflow.start(1, workflow_id="observed"))
    assert [name for name, _ in received] == ["run_started", "run_completed"]
    for _, fields in received:
        assert (fields["run_id"], fields["workflow_id"], fields["workflow"]) == (run.pk, "observed", "tests.echo")
    assert received[1][1]["status"] == "completed"
    completed = [record for record in caplog.records if "completed" in record.getMessage()]
    assert completed and completed[0].workflow_id == "observed" and completed[0].run_id == run.pk


def test_failed_attempts_and_the_failed_run_are_reported(received):
    work_until_idle(uncaught_workflow.start())
    steps = [fields for name, fields in received if name == "step_failed"]
    assert [(fields["attempt"], fields["final"]) for fields in steps] == [(1, False), (2, False), (3, True)]
    assert steps[-1]["error"]["type"] == "builtins.RuntimeError"
    ended = [fields for name, fields in received if name == "run_failed"]
    assert len(ended) == 1 and ended[0]["error"]["type"] == "durable_django.exceptions.StepFailed"


def test_a_retried_step_that_then_succeeds_reports_its_failures_and_a_completed_run(received):
    work_until_idle(flaky_workflow.start(1))
    assert [name for name, _ in received] == ["run_started", "step_failed", "run_completed"]


def test_a_cancelled_run_is_reported_cancelled(received):
    run = work_until_idle(saga.start("observed-saga"))
    run.cancel()
    work_until_idle(run)
    assert [name for name, _ in received][-1] == "run_cancelled"


def test_nothing_is_sent_for_a_start_that_rolled_back(received):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        echo_workflow.start(1)
        1 / 0  # noqa: B018
    assert received == []


def test_steps_and_finished_runs_are_spans_when_opentelemetry_is_there(monkeypatch):
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(observe, "_tracer", provider.get_tracer("durable_django"))
    run = work_until_idle(echo_workflow.start(4))
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"step tests.double", "run tests.echo"}
    assert spans["step tests.double"].attributes["durable.run_id"] == str(run.pk)
    assert spans["run tests.echo"].attributes["durable.status"] == "completed"
