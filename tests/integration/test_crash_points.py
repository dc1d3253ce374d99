"""A worker (or the web process) dies at each dangerous point; the run still ends right.

Each test arms one crash point (durable_django/faults.py) in the processes that
run the code, makes a purchase (an external charge at the fake provider, then an atomic
write), and checks the outcome: the run completed, the card was charged once (the retry,
if any, carried the same idempotency key), the atomic write happened once.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from durable_django.models import WorkflowRun
from example_project.shop import payments
from tests.testapp.models import Counter
from tests.testapp.workflows import purchase

from .waiting import wait_finished, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("ledger")]

#: point -> provider requests expected for the charge (2 when the charge itself is retried)
POINTS = {
    "step.after_claim": 1,
    "step.after_call": 2,
    "step.after_checkpoint": 1,
    "advance.before_commit": 1,
}


def arm(worker, tmp_path, point: str):
    ticket = tmp_path / "crash-ticket"
    ticket.write_text(point)
    worker.env.update(DURABLE_CRASH_AT=point, DURABLE_CRASH_FILE=str(ticket))
    worker.kill()
    worker.start()
    return ticket


def assert_purchased_once(run: WorkflowRun, order: str, requests: int) -> None:
    assert run.status == WorkflowRun.Status.COMPLETED, run.error
    (charge,) = [charge for charge in payments.ledger() if charge["reference"] == order]
    assert charge["requests"] == requests
    assert run.result == {"charge": charge["charge_id"], "marked": 1}
    assert Counter.objects.get(name=f"{order}:paid").value == 1


@pytest.mark.parametrize("point,requests", POINTS.items(), ids=POINTS.keys())
def test_a_worker_that_dies_at_the_point_is_taken_over_and_the_purchase_happens_once(worker, tmp_path, point, requests):
    ticket = arm(worker, tmp_path, point)
    run = purchase.start(f"order-{point}", 1999)
    wait_for(lambda: not ticket.exists(), timeout=20, what=f"a worker to die at {point}")
    (run,) = wait_finished([run], timeout=40)
    assert_purchased_once(run, f"order-{point}", requests)


def test_a_web_process_that_dies_after_commit_before_publishing_loses_nothing(worker, tmp_path, worker_env):
    ticket = tmp_path / "crash-ticket"
    ticket.write_text("publish.before")
    script = (
        "import django; django.setup(); from tests.testapp.workflows import purchase; purchase.start('order-web', 1999)"
    )
    env = {**os.environ, **worker_env, "DURABLE_CRASH_AT": "publish.before", "DURABLE_CRASH_FILE": str(ticket)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    died = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert died.returncode == 137, died.stderr.decode()
    assert not ticket.exists()
    run = wait_for(lambda: WorkflowRun.objects.filter(workflow_name="tests.purchase").first(), timeout=5)
    (run,) = wait_finished([run], timeout=40)
    assert_purchased_once(run, "order-web", 1)
