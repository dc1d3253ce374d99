"""A cancel committed while the run waits on a timer that is due, the timer's item taken before the cancel's advance.

Found by the chaos harness's composed workload (docs/chaos.md): children of a cancelled
parent were asked to cancel (``cancel_requested_at`` set while they were live), yet ended
``completed``. Each waited on its last ``sleep``, whose timer came due as the cancel
landed. The worker that took the timer's item fired the sleep and advanced the run with
the cancel pending: ``Cancelled`` was raised at the *next* yield, after the code between
them ran, and a workflow with no yield after the sleep completed as if never cancelled
(``run.cancel()`` had returned: the cancel was accepted, then ignored). docs/cancellation.md:
``Cancelled`` is raised at the yield where the workflow waits, and its timer is dropped.

Driven by hand in the test's process (no broker): the two work items a real worker pool
races, taken in the losing order.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import work_items
from durable_django.testing import run_until_idle
from tests.testapp.models import Counter
from tests.testapp.workflows import bump

pytestmark = pytest.mark.django_db
Status = WorkflowRun.Status


@durable.workflow(name="tests.chaos.timer_last")
def timer_last(kind: str):
    try:
        if kind == "sleep":
            yield durable.sleep(timedelta(hours=1))
        else:
            yield durable.wait_signal("never", timeout=timedelta(hours=1))
    except durable.Cancelled:
        yield bump(f"{kind}-last-compensated")
        raise
    return "woke"


def cancel_then_take_the_due_timer_first(run: WorkflowRun) -> None:
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Status.WAITING
    run.cancel()
    timers = WorkItem.objects.filter(run=run, kind=WorkItem.Kind.TIMER)
    timers.update(available_at=timezone.now() - timedelta(seconds=1))  # due just as the cancel commits
    (timer,) = timers.values_list("pk", flat=True)
    claim = work_items.take(timer)
    if claim is not None:
        work_items.release(claim)
    run_until_idle()
    run.refresh_from_db()


@pytest.mark.parametrize("kind", ["sleep", "wait_timeout"])
def test_a_cancel_committed_before_a_due_timer_is_taken_is_raised_where_the_run_waits(kind):
    run = timer_last.start(kind)
    cancel_then_take_the_due_timer_first(run)
    waited = HistoryEntry.objects.get(run=run, seq=0)
    assert (run.status, run.result) == (Status.CANCELLED, None), "the accepted cancel was ignored"
    assert waited.status == HistoryEntry.Status.CANCELLED, "the timer fired after the cancel committed"
    assert Counter.objects.get(name=f"{kind}-last-compensated").value == 1
