"""The toolkit inside a plain ``django.test.TestCase``: one transaction, never committed, no Celery.

pytest's ``django_db`` (not transactional) gives a test the same single transaction.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import TestCase

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.testing import assert_history, pass_time, run_until_idle, run_workflow, send_signal
from tests.testapp.models import Counter
from tests.testapp.workflows import adder, collect, echo_workflow, parent, saga

from .workflows import month, retried, shipping


def counter(name: str) -> int:
    found = Counter.objects.filter(name=name).first()
    return 0 if found is None else found.value


class RunningWorkflowsInATestCase(TestCase):
    def test_a_workflow_runs_to_completion_without_celery(self):
        run = run_workflow(echo_workflow, 21, note="hi")
        self.assertEqual(run.status, "completed")
        self.assertEqual(run.result, {"value": 21, "doubled": 42, "extra": {"note": "hi"}})

    def test_a_thirty_day_sleep_takes_no_time_and_never_fires_early(self):
        run = run_workflow(month, "trial")
        self.assertEqual((run.status, counter("trial:start")), ("waiting", 1))

        pass_time(timedelta(days=29, hours=23))
        run.refresh_from_db()
        self.assertEqual((run.status, counter("trial:day 30")), ("waiting", 0))

        pass_time(timedelta(hours=1))
        self.assertEqual(counter("trial:day 30"), 1)
        for sleep in HistoryEntry.objects.filter(run=run, kind="sleep", status="completed"):
            self.assertGreaterEqual(sleep.finished_at, sleep.fire_at)

    def test_time_passes_through_a_timer_set_while_it_passes(self):
        run = run_workflow(month, "through")
        pass_time(timedelta(days=31))  # day 30 fires, then the 1-day sleep it starts
        run.refresh_from_db()
        self.assertEqual((run.status, run.result), ("completed", 1))
        assert_history(run, ["step tests.bump", "sleep", "step tests.bump", "sleep", "step tests.bump"])

    def test_signals_wake_the_run_and_groups_run_inline(self):
        run = run_workflow(shipping, 5)
        assert_history(run, ["step tests.double", "signal shipped (scheduled)"])
        run = send_signal(run, "shipped", {"carrier": "UPS"})
        self.assertEqual(run.result, {"charged": 10, "shipped": {"carrier": "UPS"}, "both": [2, 4]})
        assert_history(
            run, ["step tests.double", "signal shipped", "all_of", "  step tests.double", "  step tests.double"]
        )

    def test_a_signal_wait_times_out_when_time_passes(self):
        run = run_workflow(shipping, 5)
        pass_time(timedelta(days=7))
        run.refresh_from_db()
        self.assertEqual(run.result, {"charged": 10, "shipped": False})

    def test_many_signals_in_a_row_each_wake_the_run(self):
        run = run_workflow(collect, 3)
        for item in ("a", "b", "c"):
            run = send_signal(run.workflow_id, "item", item)
        self.assertEqual(run.result, ["a", "b", "c"])

    def test_step_retries_wait_for_time_to_pass(self):
        run = run_workflow(retried)  # waits 30 s, then 60 s, between attempts
        self.assertEqual(run.status, "running")
        pass_time(timedelta(seconds=29))
        self.assertEqual(HistoryEntry.objects.get(run=run).attempts, 1)
        pass_time(timedelta(seconds=1))
        self.assertEqual(HistoryEntry.objects.get(run=run).attempts, 2)
        pass_time(timedelta(seconds=60))
        run.refresh_from_db()
        self.assertEqual(run.result, 3)

    def test_a_child_workflow_wakes_its_parent(self):
        run = run_workflow(parent, 4)
        self.assertEqual((run.status, run.result), ("completed", 8))

    def test_a_cancel_runs_the_compensation(self):
        run = run_workflow(saga, "order")
        self.assertEqual(run.status, "waiting")
        durable.cancel(run)
        run_until_idle()
        run.refresh_from_db()
        self.assertEqual(run.status, "cancelled")
        self.assertEqual(counter("order:refunded"), 1)

    def test_continue_as_new_goes_on_in_the_same_test(self):
        run = run_workflow(adder, 0, 2)
        for value in (1, 2, 3):
            run = send_signal(run, "add", value)
        self.assertEqual((run.generation, run.state, run.status), (1, 6, "waiting"))

    def test_nothing_is_left_to_do_once_idle(self):
        run_workflow(echo_workflow, 1)
        self.assertFalse(WorkItem.objects.exists())
        self.assertEqual(run_until_idle(), 0)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_messages")
def test_run_until_idle_finishes_a_run_woken_twice_inside_a_test_transaction():
    # Given a TestCase-style test: everything happens inside one transaction that never commits.
    assert transaction.get_connection().in_atomic_block
    run = collect.start(1)
    run_until_idle()  # the run waits for its signal
    run.signal("item", "a")  # the second wake of the same run in this transaction
    run_until_idle()
    run.refresh_from_db()
    assert run.status == WorkflowRun.Status.COMPLETED
