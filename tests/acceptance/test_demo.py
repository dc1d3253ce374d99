"""`make demo` end to end: a web process and a real Celery worker process side by side on SQLite.

No server is needed: the demo uses SQLite and Celery's filesystem broker in a temporary
directory, SIGKILLs the worker mid-step, ships, cancels and times out orders, and checks
every invariant itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="the demo finds pool processes in /proc")


def test_the_demo_survives_sigkilled_workers_charges_every_card_once_and_refunds_the_unshipped(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
    env.update(DEMO_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "example_project.demo", "--orders", "8", "--kills", "2", "--seed", "7"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    assert f"SQLite database and filesystem broker in {tmp_path}" in output
    assert re.search(r"kill 1: SIGKILL pool process \d+ while it ran \w+ of order-\d+", output), output
    assert re.search(r"kill 2: SIGKILL the whole worker \(main \d+, pool [\d, ]+\) while it ran", output), output
    assert "worker restarted" in output
    assert re.search(r'shipped 3 orders: run.signal\("shipped", \{"carrier": ...\}\)', output), output
    assert re.search(r"cancelled: order-\d+, order-\d+, order-\d+ \(run.cancel\(\)\)", output), output
    assert re.search(r"left unshipped: order-\d+, order-\d+\n", output), output
    assert "a week passes: advance_time(timedelta(days=7))" in output
    for label, value in {
        "orders": 8,
        "cards charged exactly once (provider's ledger)": 8,
        "charges in the provider's ledger": 8,
        "mark_paid wrote exactly once (paid_writes == 1)": 8,
        "order, run result and ledger agree on the charge": 8,
        "orders shipped, with the carrier sent": 3,
        "runs completed (shipped, or refunded at the timeout)": 5,
        "runs cancelled": 3,
        "cancelled orders refunded, one refund per charge": 3,
        "unshipped orders refunded, one refund per charge": 2,
        "refunds in the provider's ledger": 5,
        "mark_refunded writes (once per refunded order)": 5,
        "work items left over": 0,
    }.items():
        assert re.search(rf"\n  ok  {re.escape(label)}\s+{value}\n", output), f"{label} != {value}:\n{output}"
    assert re.search(r"kills that landed mid-step\s+2 \(pool process: 1, whole worker: 1\)", output), output
    assert int(re.search(r"charges requested more than once\s+(\d+)", output)[1]) >= 1
    landed = re.search(r"cancelled while cooling off / awaiting shipment\s+(\d+) / (\d+)\n", output)
    assert landed and int(landed[1]) + int(landed[2]) == 3, output
    assert "BAD" not in output and "FAILED" not in output
    assert f"DEMO_VAR_DIR={tmp_path} " in output and "manage.py runserver 127.0.0.1:8000" in output

    # The printed runserver command opens the demo's database, where the demo user can log in.
    check = (
        "from django.contrib.auth import authenticate; from example_project.shop.models import Order; "
        "print(*sorted(Order.objects.values_list('status', flat=True)), bool(authenticate(username='demo', "
        "password='demo')))"
    )
    shell = [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", check]
    opened = subprocess.run(shell, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert opened.stdout.split() == ["refunded"] * 5 + ["shipped"] * 3 + ["True"], opened.stdout + opened.stderr
