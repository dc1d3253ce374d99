"""``durable_prune``: finished top-level runs older than N days go, in batches; nothing live is touched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from durable_django.models import HistoryEntry, WorkflowRun
from durable_django.testing import pass_time, run_until_idle, run_workflow
from tests.testapp.workflows import collect, echo_workflow, parent, uncaught_workflow

pytestmark = [pytest.mark.django_db]


def age(run: WorkflowRun, days: float) -> WorkflowRun:
    WorkflowRun.objects.filter(Q(pk=run.pk) | Q(parent=run)).update(finished_at=timezone.now() - timedelta(days=days))
    return run


def test_finished_runs_older_than_the_cutoff_go_with_their_history_and_children(command):
    old = [age(run_workflow(echo_workflow, n), 40) for n in range(3)]
    old_parent = age(run_workflow(parent, 1), 40)
    recent = run_workflow(echo_workflow, 9)
    assert old_parent.status == "completed" and old_parent.children.count() == 1

    result = command("durable_prune", "--days", "30")

    assert result.status == 0
    assert "deleted 4 finished runs older than 30 days" in result.out
    assert set(WorkflowRun.objects.values_list("pk", flat=True)) == {recent.pk}
    assert HistoryEntry.objects.exclude(run=recent).count() == 0
    assert all(not WorkflowRun.objects.filter(pk=run.pk).exists() for run in old)


def test_live_blocked_and_recently_failed_runs_stay(command):
    waiting = age(collect.start(1), 400)  # finished_at is ignored: the run is live
    run_until_idle()
    blocked = age(run_workflow(collect, 1), 400)
    WorkflowRun.objects.filter(pk=blocked.pk).update(status=WorkflowRun.Status.BLOCKED)
    failed = run_workflow(uncaught_workflow)
    pass_time(timedelta(minutes=1))  # through the step's retries
    failed.refresh_from_db()
    assert failed.status == "failed"
    age(failed, 0.5)

    result = command("durable_prune", "--days", "1")

    assert result.status == 0, result.err
    assert set(WorkflowRun.objects.values_list("pk", flat=True)) == {waiting.pk, blocked.pk, failed.pk}


def test_a_finished_parent_with_a_live_child_is_kept(command):
    run = age(run_workflow(echo_workflow, 1), 10)
    child = collect.start(1)
    WorkflowRun.objects.filter(pk=child.pk).update(parent=run, parent_seq=0)

    result = command("durable_prune", "--days", "1")

    assert "deleted 0 finished runs" in result.out
    assert "1 kept" in result.out
    assert WorkflowRun.objects.filter(pk=run.pk).exists()


def test_batches_each_report_progress_and_a_dry_run_deletes_nothing(command):
    for n in range(5):
        age(run_workflow(echo_workflow, n), 3)

    dry = command("durable_prune", "--days", "2", "--batch-size", "2", "--dry-run")
    assert "would delete 5 finished runs older than 2 days" in dry.out
    assert dry.err.splitlines() == [
        "would delete 2 of about 5 runs",
        "would delete 4 of about 5 runs",
        "would delete 5 of about 5 runs",
    ]
    assert WorkflowRun.objects.count() == 5

    real = command("durable_prune", "--days", "2", "--batch-size", "2")
    assert real.err.splitlines()[-1] == "deleted 5 of about 5 runs"
    assert "deleted 5 finished runs older than 2 days" in real.out
    assert "durable_django.HistoryEntry" in real.out
    assert WorkflowRun.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: --days"),
        (("--days", "-1"), "argument --days: -1 is less than 0"),
        (("--days", "ten"), "argument --days: 'ten' is not a whole number"),
        (("--days", "1", "--batch-size", "0"), "argument --batch-size: 0 is less than 1"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(command, args, message):
    result = command("durable_prune", *args)
    assert result.status == 1
    assert message in result.err
