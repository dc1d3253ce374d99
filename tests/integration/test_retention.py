"""``DURABLE_RETENTION``: the workers' sweepers delete old finished runs in bounded batches; off by default."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.testing import run_until_idle, run_workflow
from durable_django.worker import sweeper
from tests.testapp.workflows import collect, echo_workflow, parent

pytestmark = [pytest.mark.django_db]


def age(run: WorkflowRun, hours: float) -> WorkflowRun:
    ended = timezone.now() - timedelta(hours=hours)
    WorkflowRun.objects.filter(Q(pk=run.pk) | Q(parent=run)).update(finished_at=ended)
    return run


def test_retention_is_off_by_default_and_nothing_is_deleted():
    age(run_workflow(echo_workflow, 1), 24 * 365)
    assert sweeper.prune_expired() == 0
    assert WorkflowRun.objects.count() == 1


def test_a_sweep_deletes_finished_runs_past_retention_with_their_history_and_children_and_nothing_else(settings):
    settings.DURABLE_RETENTION = timedelta(hours=1)
    old = [age(run_workflow(echo_workflow, n), 2) for n in range(3)]
    old_parent = age(run_workflow(parent, 1), 2)
    recent = age(run_workflow(echo_workflow, 9), 0.5)
    waiting = age(collect.start(1), 2)  # live: its finished_at means nothing
    run_until_idle()
    blocked = age(run_workflow(echo_workflow, 5), 2)
    WorkflowRun.objects.filter(pk=blocked.pk).update(status=WorkflowRun.Status.BLOCKED)

    sweeper.Sweeper._full_sweep()

    kept = set(WorkflowRun.objects.values_list("pk", flat=True))
    assert kept == {recent.pk, waiting.pk, blocked.pk}
    assert not HistoryEntry.objects.filter(run_id__in=[run.pk for run in [*old, old_parent]]).exists()
    assert WorkItem.objects.filter(run=waiting).exists() or waiting.history.exists()


def test_a_backlog_is_deleted_a_few_batches_a_sweep(settings, monkeypatch):
    settings.DURABLE_RETENTION = timedelta(days=1)
    monkeypatch.setattr(sweeper, "PRUNE_BATCH", 3)
    for n in range(10):
        age(run_workflow(echo_workflow, n), 48)
    assert sweeper.prune_expired(rounds=2) == 6
    assert WorkflowRun.objects.count() == 4
    assert sweeper.prune_expired(rounds=2) == 4
    assert not WorkflowRun.objects.exists()
