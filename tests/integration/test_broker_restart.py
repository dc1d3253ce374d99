"""Found by the chaos harness: a Redis restart takes down a worker that holds a timer's countdown message.

A timer or retry wait up to ``DURABLE_COUNTDOWN_HINT_MAX`` also travels as a Celery
countdown, which the worker holds unacknowledged until it is due. With Celery 5.7, kombu
5.7 and redis-py 8, a worker holding any unacknowledged message exits ("Unrecoverable
error: AttributeError: 'NoneType' object has no attribute 'hostname'", from
``restore_unacked`` while the connection closes) when the Redis server goes away, instead
of reconnecting. Nothing is lost in the database, but no run moves until something
restarts the worker. The test uses a Redis server of its own, since it restarts it.
"""

from __future__ import annotations

import time

import pytest

from chaos.services import Redis, free_port
from durable_django.models import WorkflowRun
from tests.support.processes import CeleryWorker
from tests.testapp.workflows import nap

from .waiting import wait_finished, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.redis]


@pytest.fixture
def private_redis(tmp_path):
    server = Redis(free_port(), tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()


def held_messages(server: Redis) -> int:
    with server.client() as client:
        return int(client.hlen("unacked"))


@pytest.mark.xfail(
    # Not strict: whether the worker is inside restore_unacked when the connection drops is
    # timing; on a loaded machine it sometimes survives (seen once under make test-next).
    strict=False,
    reason="Celery 5.7/kombu 5.7: a worker holding an unacknowledged (countdown) message usually exits when "
    "Redis restarts (AttributeError in restore_unacked); found by the chaos harness, see docs/chaos.md",
)
@pytest.mark.usefixtures("no_messages", "transactional_db")
def test_a_worker_holding_a_timers_countdown_message_survives_a_broker_restart(worker_env, tmp_path, private_redis):
    worker = CeleryWorker(
        "tests.celery_app", {**worker_env, "CELERY_BROKER_URL": private_redis.url}, tmp_path, queues="celery,special"
    )
    worker.start()
    try:
        run = nap.start(4, "broker-restart")  # this process sends nothing: the worker's sweeper wakes the run
        wait_for(lambda: held_messages(private_redis), timeout=20, what="the worker to hold the timer's countdown")
        private_redis.crash()
        private_redis.start()
        time.sleep(3)
        assert worker.process is not None and worker.process.poll() is None, (
            "the worker exited when the broker restarted:\n" + worker.logs()[-3000:]
        )
        (run,) = wait_finished([run], timeout=30)
        assert run.status == WorkflowRun.Status.COMPLETED
    finally:
        worker.kill()
