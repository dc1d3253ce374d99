"""On PostgreSQL a step that follows a step costs one statement, and every other case still works."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.worker import runner
from tests.testapp.workflows import chain, stages

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_messages")]


def run_here(run: WorkflowRun) -> WorkflowRun:
    """Work the run's first item in this process, inline to the end; return it fresh."""
    runner.work(WorkItem.objects.get(run=run).pk)
    run.refresh_from_db()
    return run


def test_each_step_after_the_first_is_one_statement():
    run = chain.start(10)
    item = WorkItem.objects.get(run=run).pk
    with CaptureQueriesContext(connection) as queries:
        runner.work(item)
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 18)
    statements = [query["sql"].split(None, 1)[0] for query in queries.captured_queries]
    # The first advance is one transaction; then one statement per step, the last one ending the run.
    first_commit = statements.index("COMMIT")
    assert statements[first_commit + 1 :] == ["WITH"] * 10, statements


def test_states_and_patch_markers_between_steps_take_the_general_way_and_are_kept():
    run = run_here(stages.start())
    assert (run.status, run.result, run.state) == (WorkflowRun.Status.COMPLETED, 8, "between")
    kinds = list(HistoryEntry.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds == ["step", "state", "step", "patched", "step"]


def test_the_fast_path_can_be_turned_off(settings):
    settings.DURABLE_FAST_PATH = False
    run = chain.start(3)
    with CaptureQueriesContext(connection) as queries:
        run = run_here(run)
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 3)
    assert not any(query["sql"].startswith("WITH") for query in queries.captured_queries)
