"""A run with a deadline that completes right after a step drops its deadline's timer (found by the chaos harness).

``lifecycle.finish()`` drops every work item of the run it finishes ("drop its pending
work"); the fast path's one-statement completion (``fastpath._COMPLETE``) deleted only the
step's own item. A run started with ``using(timeout=...)`` that ended right after a step
(the common case: its last step on this worker) so kept the deadline's timer, due at
``deadline_at``: a finished run with a work item for as long as its timeout (days, say),
until the timer fired and found nothing to do. The composed chaos workload's sagas with a
300 s deadline left two such items in a smoke run (``work_items_left``). Such a run now
ends the general way, as a child does. The first test fails without that.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable_django.models import WorkflowRun, WorkItem
from durable_django.worker import runner
from tests.testapp.workflows import chain

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_messages")]


def test_a_run_with_a_deadline_completed_on_the_fast_path_leaves_no_work_item():
    run = chain.using(timeout=timedelta(hours=1)).start(3)
    assert WorkItem.objects.filter(run=run, kind=WorkItem.Kind.TIMER).count() == 1, "the deadline's timer"
    runner.work(
        WorkItem.objects.get(run=run, kind=WorkItem.Kind.ADVANCE).pk
    )  # inline to the end, steps on the fast path
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 3)
    left = list(WorkItem.objects.filter(run=run).values_list("kind", "seq", "available_at"))
    assert left == [], f"the finished run keeps {left}"


def test_the_same_run_completed_the_general_way_leaves_no_work_item(settings):
    settings.DURABLE_FAST_PATH = False
    run = chain.using(timeout=timedelta(hours=1)).start(3)
    runner.work(WorkItem.objects.get(run=run, kind=WorkItem.Kind.ADVANCE).pk)
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 3)
    assert not WorkItem.objects.filter(run=run).exists()
