"""The run list: columns, filters, search, counts by status, bulk actions, and a constant query count."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from durable_django.models import HistoryEntry, WorkflowRun
from tests.testapp.models import Counter
from tests.testapp.workflows import collect, echo_workflow, repairable

from .runs import LIST, settle, worked

pytestmark = [pytest.mark.django_db(transaction=True)]
Status = WorkflowRun.Status


def rows(html: str) -> list[str]:
    return [row for row in re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL) if "field-status_badge" in row]


def test_the_list_shows_status_workflow_current_step_and_attempts(staff):
    worked(echo_workflow, 21, workflow_id="echo-1")
    worked(repairable, "list", workflow_id="repair-1")
    worked(collect, 2, workflow_id="collect-1")
    html = staff().get(LIST).text
    for text in ("echo-1", "repair-1", "collect-1", "tests.repairable", "Started", "Duration", "Current step"):
        assert text in html
    (failed,) = [row for row in rows(html) if "repair-1" in row]
    assert "durable-status-failed" in failed
    assert "<code>tests.until_fixed</code>" in failed, "the failing step is the failed run's current step"
    assert re.search(r'<td class="field-attempts">1</td>', failed)
    (waiting,) = [row for row in rows(html) if "collect-1" in row]
    assert "#0</span> signal <code>item</code>" in waiting
    assert "so far" in waiting, "a live run's duration is shown as still counting"


def test_the_list_filters_by_status_and_workflow_and_counts_runs_by_status(staff):
    worked(echo_workflow, 1, workflow_id="echo-1")
    worked(echo_workflow, 2, workflow_id="echo-2")
    worked(repairable, "f", workflow_id="repair-1")
    client = staff()
    html = client.get(LIST).text
    counts = dict(re.findall(r"<span>(\w+)</span> <strong>(\d+)</strong>", html))
    assert counts == {
        "all": "3", "pending": "0", "running": "0", "waiting": "0",
        "completed": "2", "failed": "1", "cancelled": "0", "blocked": "0",
    }  # fmt: skip
    failed = client.get(LIST, {"status__exact": "failed"}).text
    assert "repair-1" in failed and "echo-1" not in failed
    assert 'durable-status-failed durable-count-selected"' in failed
    by_workflow = client.get(LIST, {"workflow_name": "tests.echo"}).text
    assert "echo-1" in by_workflow and "repair-1" not in by_workflow
    assert "?workflow_name=tests.echo&amp;status__exact=failed" in by_workflow, "a count keeps the other filters"


def test_search_finds_runs_by_part_of_the_workflow_id_or_by_the_run_id(staff):
    first = worked(echo_workflow, 1, workflow_id="order-1001")
    worked(echo_workflow, 2, workflow_id="order-2002")
    client = staff()
    by_id = client.get(LIST, {"q": "1001"}).text
    assert "order-1001" in by_id and "order-2002" not in by_id
    by_run = client.get(LIST, {"q": str(first.pk)}).text
    assert "order-1001" in by_run and "order-2002" not in by_run
    assert "order-" not in client.get(LIST, {"q": "no-such-run"}).text.split("result-list")[-1]


def make_runs(count: int, start: int = 0) -> None:
    """``count`` runs in every status with three history positions each, written in bulk."""
    statuses = Status.values
    runs = WorkflowRun.objects.bulk_create(
        WorkflowRun(
            workflow_id=f"bulk-{index}",
            workflow_name=f"tests.bulk{index % 4}",
            status=statuses[index % len(statuses)],
            input_json='{"args":[],"kwargs":{}}',
            next_seq=3,
        )
        for index in range(start, start + count)
    )
    HistoryEntry.objects.bulk_create(
        HistoryEntry(
            run=run, seq=seq, kind="step", name="tests.double", args_json='{"args":[1],"kwargs":{}}', attempts=seq + 1
        )
        for run in runs
        for seq in range(3)
    )


@pytest.mark.parametrize("query", [{}, {"status__exact": "failed", "q": "bulk"}, {"o": "-5.3"}])
def test_the_list_takes_the_same_few_queries_for_1000_runs_as_for_10(staff, query):
    client = staff("cancel", "retry")
    make_runs(10)
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST, query).status_code == 200
    make_runs(990, start=10)
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST, query)
    assert response.status_code == 200
    assert "1000" in response.text
    assert len(many) == len(few), "the list's queries grow with the number of runs:\n" + "\n".join(
        query["sql"] for query in many.captured_queries
    )
    assert len(many) <= 12, f"{len(many)} queries for one page of runs"
    print(f"{query}: {len(few)} queries for 10 runs, {len(many)} for 1,000")


def test_bulk_cancel_acts_on_live_runs_and_names_the_runs_it_refused(staff):
    waiting = worked(collect, 1, workflow_id="collect-1")
    done = worked(echo_workflow, 1, workflow_id="echo-1")
    client = staff("cancel")
    response = client.post(
        LIST, {"action": "cancel_runs", "_selected_action": [waiting.pk, done.pk], "index": 0}, follow=True
    )
    text = response.text
    assert "1 run cancelled, or asked to cancel at their current yield." in text
    assert "1 refused: run &#x27;echo-1&#x27; is completed; there is nothing left to cancel." in text
    assert settle(waiting).status == Status.CANCELLED


def test_bulk_retry_retries_failed_runs(staff):
    failed = worked(repairable, "bulk", workflow_id="repair-1")
    Counter.objects.create(name="bulk:fixed")
    response = staff("retry").post(
        LIST, {"action": "retry_runs", "_selected_action": [failed.pk], "index": 0}, follow=True
    )
    assert "1 run retrying." in response.text
    assert settle(failed).status == Status.COMPLETED


def test_bulk_actions_are_offered_only_with_their_permission(staff):
    worked(echo_workflow, 1, workflow_id="echo-1")
    assert 'name="action"' not in staff().get(LIST).text, "a viewer sees no bulk actions at all"
    html = staff("retry").get(LIST).text
    assert 'value="retry_runs"' in html and 'value="cancel_runs"' not in html


def test_a_bulk_action_without_its_permission_changes_nothing(staff):
    waiting = worked(collect, 1, workflow_id="collect-1")
    staff("retry").post(LIST, {"action": "cancel_runs", "_selected_action": [waiting.pk], "index": 0})
    waiting.refresh_from_db()
    assert waiting.cancel_requested_at is None
