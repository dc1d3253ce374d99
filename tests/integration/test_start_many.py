"""``wf.start_many()``: start() for each run, with bulk inserts, in the caller's transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import durable_django as durable
from durable_django.models import WorkflowRun, WorkItem
from durable_django.store import outbox
from durable_django.testing import pass_time, run_until_idle
from tests.testapp.models import Counter
from tests.testapp.workflows import echo_workflow, nap

from .waiting import wait_finished

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    published: list[int] = []

    def send(item_id: int | list[int], options: dict) -> None:
        published.extend(item_id if isinstance(item_id, list) else [item_id])

    monkeypatch.setattr(outbox, "send_message", send)
    return published


def test_start_many_starts_every_run_in_a_few_statements_and_they_all_complete(sent):
    calls = [durable.RunArgs(index, label=f"n{index}", workflow_id=f"echo-{index}") for index in range(300)]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        runs = echo_workflow.start_many(calls)
        assert not sent, "nothing is sent before the caller commits"
    # A few statements for all 300 (SQLite splits a bulk insert to stay under its variable limit).
    most = 12 if connection.vendor == "postgresql" else 40
    assert len(queries.captured_queries) <= most, [query["sql"][:60] for query in queries.captured_queries]
    assert [run.workflow_id for run in runs] == [f"echo-{index}" for index in range(300)]
    assert all(run.status == WorkflowRun.Status.PENDING and run.created_at is not None for run in runs)
    items = WorkItem.objects.filter(run__in=runs, kind=WorkItem.Kind.ADVANCE)
    assert items.count() == 300 and not items.filter(dispatched_at__isnull=True).exists()
    assert sorted(sent) == sorted(items.values_list("pk", flat=True)), "one wake-up per run, after the commit"
    run_until_idle()
    results = dict(
        WorkflowRun.objects.filter(pk__in=[run.pk for run in runs]).values_list("workflow_id", "result_data")
    )
    assert results["echo-7"] == {"value": 7, "doubled": 14, "extra": {"label": "n7"}}
    assert set(WorkflowRun.objects.filter(pk__in=[run.pk for run in runs]).values_list("status", flat=True)) == {
        WorkflowRun.Status.COMPLETED
    }


def test_start_many_commits_with_the_callers_rows_or_not_at_all(sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        Counter.objects.create(name="rolled-back")
        nap.start_many([(3600, "rolled-back")] * 5)
        raise RuntimeError("the caller's transaction fails")
    assert not WorkflowRun.objects.exists() and not WorkItem.objects.exists() and not Counter.objects.exists()
    assert not sent


def test_start_many_is_idempotent_by_workflow_id_like_start(sent):
    existing = echo_workflow.start(1, workflow_id="known")
    runs = echo_workflow.start_many(
        [
            durable.RunArgs(1, workflow_id="known"),
            durable.RunArgs(2, workflow_id="new"),
            durable.RunArgs(2, workflow_id="new"),
        ]
    )
    assert runs[0].pk == existing.pk and runs[1].pk == runs[2].pk
    assert WorkflowRun.objects.count() == 2 and WorkItem.objects.count() == 2
    with pytest.raises(durable.WorkflowIdConflict, match="'known'"):
        echo_workflow.start_many([durable.RunArgs(5, workflow_id="known")])
    with pytest.raises(durable.WorkflowIdConflict, match="twice"):
        echo_workflow.start_many([durable.RunArgs(5, workflow_id="twin"), durable.RunArgs(6, workflow_id="twin")])
    with pytest.raises(durable.WorkflowIdConflict, match=r"tests\.nap"):
        nap.start_many([durable.RunArgs(1, workflow_id="known")])
    assert WorkflowRun.objects.count() == 2, "a refused call creates nothing"


def test_start_many_takes_using_options_for_every_run(sent):
    subject = Counter.objects.create(name="subject")
    runs = nap.using(attributes={"batch": 7}, subject=subject).start_many([(3600, "a"), (3600, "b")])
    assert WorkflowRun.objects.filter(attributes__batch=7).count() == 2
    assert {run.pk for run in WorkflowRun.objects.for_subject(subject)} == {run.pk for run in runs}
    with pytest.raises(durable.InvalidWorkflowId, match="RunArgs"):
        nap.using(workflow_id="one").start_many([(1,), (2,)])


def test_start_many_refuses_bad_input_at_the_call_site_and_writes_nothing(sent):
    with pytest.raises(durable.InvalidRequest, match="run 1 is"):
        nap.start_many([(1,), [2]])
    with pytest.raises(durable.SerializationError, match="run 1 of start_many"):
        nap.start_many([(1,), (object(),)])
    with pytest.raises(durable.InvalidWorkflowId):
        nap.start_many([durable.RunArgs(1, workflow_id="")])
    assert not WorkflowRun.objects.exists()
    assert nap.start_many([]) == []


def test_runs_started_together_sleep_and_wake_together(sent):
    runs = nap.start_many([(60, "together")] * 20)
    run_until_idle()
    assert WorkflowRun.objects.filter(pk__in=[run.pk for run in runs], status=WorkflowRun.Status.WAITING).count() == 20
    pass_time(timedelta(minutes=1))
    assert Counter.objects.get(name="together").value == 20


@pytest.mark.broker
def test_runs_started_together_are_worked_by_a_real_worker_from_a_few_messages(worker):
    runs = wait_finished(echo_workflow.start_many([(index,) for index in range(45)]), timeout=120)
    assert [run.result["doubled"] for run in runs] == [2 * index for index in range(45)]
    assert "durable_django.execute_many[" in worker.logs()
