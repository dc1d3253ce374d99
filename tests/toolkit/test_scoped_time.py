"""``pass_time`` and ``advance_time`` scoped to a run or a workflow leave every other run's timers alone.

Unscoped, they move every timer in the database: in ``manage.py shell`` on a shared database
that charges other people's subscriptions early. Scoped, a run's own children come along.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase

from durable_django.models import WorkflowRun, WorkItem
from durable_django.testing import advance_time, no_broker, pass_time, run_workflow
from tests.testapp.models import Counter
from tests.testapp.workflows import nap, parent_of_sleeper

from .workflows import month, shipping


def counter(name: str) -> int:
    found = Counter.objects.filter(name=name).first()
    return 0 if found is None else found.value


def timers(run: WorkflowRun) -> list:
    return list(WorkItem.objects.filter(run=run, kind=WorkItem.Kind.TIMER).values_list("available_at", flat=True))


class ScopedTime(TestCase):
    def test_pass_time_for_one_run_fires_its_timers_only(self):
        mine, other = run_workflow(month, "mine"), run_workflow(month, "other")
        others_timer = timers(other)

        pass_time(timedelta(days=31), run=mine)

        mine.refresh_from_db()
        other.refresh_from_db()
        self.assertEqual((mine.status, counter("mine:day 31")), ("completed", 1))
        self.assertEqual((other.status, counter("other:day 30")), ("waiting", 0))
        self.assertEqual(timers(other), others_timer, "the other run's timer did not move")

    def test_a_run_is_also_given_by_its_workflow_id(self):
        run_workflow(month, "by-id", workflow_id="trial-by-id")
        run_workflow(month, "untouched")
        pass_time(timedelta(days=30), run="trial-by-id")
        self.assertEqual((counter("by-id:day 30"), counter("untouched:day 30")), (1, 0))

    def test_pass_time_for_a_workflow_moves_its_runs_and_no_other_workflow(self):
        waiting_for_ship = run_workflow(shipping, 5)
        trial = run_workflow(month, "trial")

        pass_time(timedelta(days=7), workflow=shipping)

        waiting_for_ship.refresh_from_db()
        self.assertEqual(waiting_for_ship.result, {"charged": 10, "shipped": False})
        trial.refresh_from_db()
        self.assertEqual(trial.status, "waiting")
        # The workflow may also be named by its registered name.
        pass_time(timedelta(days=30), workflow="tests.toolkit.month")
        self.assertEqual(counter("trial:day 30"), 1)

    def test_a_scoped_run_brings_its_children_along(self):
        parent = run_workflow(parent_of_sleeper, "kid")  # its child charges, reserves, sleeps an hour
        stranger = run_workflow(nap, 3600, "stranger")

        pass_time(timedelta(hours=1), run=parent)

        parent.refresh_from_db()
        self.assertEqual(parent.status, "completed")
        stranger.refresh_from_db()
        self.assertEqual((stranger.status, counter("stranger")), ("waiting", 0))

    def test_advance_time_for_one_run_moves_its_timers_only(self):
        mine, other = run_workflow(nap, 3600, "a"), run_workflow(nap, 3600, "b")
        before = timers(mine)[0], timers(other)[0]
        with no_broker():
            published = advance_time(timedelta(hours=1), run=mine)
        self.assertEqual(published, 1)
        self.assertEqual(timers(mine)[0], before[0] - timedelta(hours=1))
        self.assertEqual(timers(other)[0], before[1])

    def test_a_scope_that_names_nothing_is_refused(self):
        with self.assertRaises(LookupError):
            pass_time(timedelta(days=1), run="no-such-run")
        with self.assertRaises(LookupError):
            pass_time(timedelta(days=1), workflow="no.such.workflow")
        with pytest.raises(TypeError):
            pass_time(timedelta(days=1), run=run_workflow(nap, 1, "x"), workflow=nap)
