"""Durable timers on a real worker: database rows, fired once, never early, surviving kills."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.testing import advance_time
from tests.testapp.models import Counter
from tests.testapp.workflows import nap

from .waiting import wait_finished, wait_for, wait_status

pytestmark = [pytest.mark.broker]
WAITING = WorkflowRun.Status.WAITING


def test_a_timer_survives_a_worker_sigkill_and_fires_once_not_early(worker):
    run = nap.start(3600, "survivor")
    wait_status(run, WAITING, timeout=20)
    worker.kill()  # nothing is held while it sleeps: the whole worker can die
    worker.start()
    advance_time(timedelta(hours=1))
    (run,) = wait_finished([run], timeout=20)
    assert run.status == WorkflowRun.Status.COMPLETED
    assert Counter.objects.get(name="survivor").value == 1, "the step after the sleep ran more than once"
    sleep = HistoryEntry.objects.get(run=run, kind="sleep")
    assert sleep.status == HistoryEntry.Status.COMPLETED
    assert sleep.finished_at >= sleep.fire_at, "the timer fired before its time"


def test_a_short_sleep_fires_by_itself_and_not_before_its_time(worker):
    run = nap.start(1.5, "short")
    (run,) = wait_finished([run], timeout=20)
    sleep = HistoryEntry.objects.get(run=run, kind="sleep")
    assert sleep.finished_at >= sleep.fire_at
    assert (sleep.fire_at - sleep.scheduled_at).total_seconds() >= 1.5


@pytest.mark.redis  # reads Redis's lists
@pytest.mark.postgres  # reads pg_stat_activity
def test_a_thousand_sleeping_runs_hold_no_worker_message_or_transaction_then_all_wake(worker):
    with transaction.atomic():
        runs = [nap.start(3600, "sleepers") for _ in range(1000)]
    wait_for(lambda: WorkflowRun.objects.filter(status=WAITING).count() == 1000, timeout=120, what="1,000 runs asleep")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # Under load the start burst may have drawn a few duplicate wake-ups; they do nothing and
    # drain. What must not stay is a message per sleeping run.
    wait_for(
        lambda: broker.llen("celery") == 0 and broker.hlen("unacked") == 0,
        timeout=60,
        what="the broker to hold no message for the sleeping runs",
    )
    assert not WorkItem.objects.exclude(kind=WorkItem.Kind.TIMER).exists()
    assert not WorkItem.objects.filter(lease_expires_at__isnull=False).exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in%%'"
        )
        assert cursor.fetchone()[0] == 0, "a sleeping run holds a transaction open"

    advance_time(timedelta(hours=1))
    runs = wait_finished(runs, timeout=180)
    assert {run.status for run in runs} == {WorkflowRun.Status.COMPLETED}
    assert Counter.objects.get(name="sleepers").value == 1000
