"""workflow_info(), now() and uuid4() on PostgreSQL with a real worker: what live code read replays the same."""

from __future__ import annotations

from datetime import datetime

import pytest

import durable_django as durable
from durable_django.models import HistoryEntry
from durable_django.testing import run_workflow
from tests.testapp.conversations import info_looper, info_reader

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
