"""Updates where features meet: deadlines, continue_as_new with queries, a group of many waits."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable_django as durable
from durable_django import updates
from durable_django.models import WorkflowRun
from durable_django.testing import pass_time, run_until_idle, run_workflow, send_signal, send_update
from tests.testapp.conversations import many_updates_together, tally, update_before_deadline

pytestmark = pytest.mark.django_db
Status = WorkflowRun.Status


def test_a_deadline_while_the_run_waits_for_an_update_cancels_it_and_an_update_it_never_took_hears_run_finished():
    run = run_workflow(update_before_deadline)
    update_id = updates.send(run, "other", 1)  # no wait takes this name
    pass_time(timedelta(hours=2), run=run)
    run.refresh_from_db()
    assert run.status == Status.CANCELLED and "DeadlineExceeded" in run.error["type"]
    with pytest.raises(durable.RunFinished):
        send_update(run, "other", 1, update_id=update_id)


def test_updates_queries_and_state_follow_a_run_across_generations():
    run = run_workflow(tally, 0)
    assert send_update(run, "get") == 0
    for _ in range(5):
        run = send_signal(run, "add", 3)
    assert run.generation == 2, "continued as new at 12 and at 15"
    assert (send_update(run, "get"), run.query("total"), run.state) == (15, 15, {"total": 15})


def test_an_all_of_of_150_update_waits_takes_150_buffered_updates_at_once():
    run = run_workflow(many_updates_together, 150)
    sent = [updates.send(run, "vote", number) for number in range(150)]
    run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, list(range(150)))
    assert send_update(run, "vote", 7, update_id=sent[7]) == 14, "each answered"
