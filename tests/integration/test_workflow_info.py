"""workflow_info(), now() and uuid4() on PostgreSQL with a real worker: what live code read replays the same."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import durable_django as durable
from durable_django.models import HistoryEntry
from durable_django.testing import no_broker, run_until_idle, run_workflow
from tests.testapp.conversations import info_looper, info_reader, steps_clocked, steps_plain

from .waiting import wait_status


def test_what_the_workers_live_code_read_is_what_a_replay_in_another_process_reads(worker):
    run = info_reader.using(workflow_id="info-live").start()
    run = wait_status(run, durable.WorkflowRun.Status.WAITING, timeout=30)
    replayed = run.query()["seen"]  # this process replays from history; the worker ran the code live
    run.signal("finish")
    live = run.wait(timeout=30)
    assert live == replayed
    workflow_id, position, started, first_id, later_position, later, second_id = live
    assert (workflow_id, position, later_position) == ("info-live", 0, 1)
    times = dict(HistoryEntry.objects.filter(run=run).values_list("seq", "scheduled_at"))
    assert datetime.fromisoformat(started) == times[0] and datetime.fromisoformat(later) == times[1]
    assert started < later and first_id != second_id


@pytest.mark.django_db
def test_the_suggestion_to_continue_as_new_follows_the_setting_and_a_child_reads_its_parent(settings):
    settings.DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER = 1  # from one entry on
    run = run_workflow(info_looper, 2, workflow_id="info-loop")
    assert run.status == durable.WorkflowRun.Status.COMPLETED
    assert run.result == {"generation": 2, "suggested": True, "child": ["info-loop", "info-loop/2.1"]}


@pytest.mark.django_db
def test_under_the_threshold_nothing_is_suggested():
    run = run_workflow(info_looper, 2, workflow_id="info-no-loop")
    assert run.result == {"generation": 0, "suggested": False, "child": ["info-no-loop", "info-no-loop/1"]}


@pytest.mark.django_db(transaction=True)
def test_reading_the_clock_costs_one_query_per_position_and_keeps_the_one_statement_path():
    def queries(workflow, n: int) -> tuple[int, durable.WorkflowRun]:
        with no_broker():
            run = workflow.start(n)
            with CaptureQueriesContext(connection) as captured:
                run_until_idle()
        run.refresh_from_db()
        assert run.status == durable.WorkflowRun.Status.COMPLETED
        return len(captured), run

    plain, _ = queries(steps_plain, 50)
    clocked, run = queries(steps_clocked, 50)
    assert clocked - plain == 50 + 1, "a SELECT of the database's clock per position, and the run's facts once"
    times = HistoryEntry.objects.filter(run=run).order_by("seq").values_list("scheduled_at", flat=True)
    assert [time.isoformat() for time in times] == run.result, "each time read is the one its entry recorded"
