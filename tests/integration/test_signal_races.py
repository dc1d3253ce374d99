"""Signals are never lost silently: each one signal() accepted is taken by a wait, or refused.

Senders race runs that loop ``wait_signal("msg", timeout=short)`` until a timeout ends them:
the messages each run returns must be exactly the messages whose ``signal()`` returned. A
signal that loses the race to the run's end raises ``RunFinished``; none is accepted and
then dropped.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import pytest
from django.db import connections

import durable_django as durable
from durable_django.models import WorkflowRun
from tests.testapp.compositions import mailbox

from .waiting import wait_finished

pytestmark = pytest.mark.broker


def test_every_accepted_signal_is_taken_and_every_other_is_refused(worker):
    runs = [mailbox.start(1.0) for _ in range(8)]
    accepted: dict[str, list[str]] = defaultdict(list)
    refused = defaultdict(int)
    lock = threading.Lock()
    deadline = time.monotonic() + 8

    def sender(number: int) -> None:
        rng = random.Random(number)
        sent = 0
        try:
            while time.monotonic() < deadline:
                run = rng.choice(runs)
                message = f"{number}-{sent}"
                sent += 1
                try:
                    durable.signal(run.workflow_id, "msg", message)
                except durable.RunFinished:
                    with lock:
                        refused[run.workflow_id] += 1
                else:
                    with lock:
                        accepted[run.workflow_id].append(message)
                time.sleep(rng.uniform(0.0, 0.4))  # gaps around the runs' 1 s timeout
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    finished = wait_finished(runs, timeout=60)
    assert all(run.status == WorkflowRun.Status.COMPLETED for run in finished)
    for run in finished:
        assert sorted(run.result) == sorted(accepted[run.workflow_id]), (
            f"{run.workflow_id}: took {len(run.result)}, {len(accepted[run.workflow_id])} were accepted"
        )
    assert sum(len(messages) for messages in accepted.values()) > 20, "too few signals to race anything"
    assert sum(refused.values()) > 0, "no run ended while signals came: nothing raced"
