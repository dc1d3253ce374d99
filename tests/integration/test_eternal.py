"""A workflow that runs forever on signals keeps a bounded history by continuing as new."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import Max

from durable_django.models import HistoryEntry, Signal, WorkflowRun
from tests.testapp.workflows import adder

from .waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

SIGNALS = 10_000
EVERY = 100  # the workflow continues as new after this many signals


def test_ten_thousand_signals_are_each_added_once_with_a_bounded_history(worker):
    run = adder.start(0, EVERY)
    largest_history = 0
    for batch in range(SIGNALS // 1000):
        with transaction.atomic():
            for value in range(batch * 1000 + 1, batch * 1000 + 1001):
                run.signal("add", value)
        largest_history = max(largest_history, HistoryEntry.objects.filter(run=run).count())

    expected = SIGNALS * (SIGNALS + 1) // 2

    def finished_adding() -> WorkflowRun | None:
        nonlocal largest_history
        largest_history = max(largest_history, HistoryEntry.objects.filter(run=run).count())
        return WorkflowRun.objects.filter(
            pk=run.pk, state_json=str(expected), status=WorkflowRun.Status.WAITING
        ).first()

    run = wait_for(finished_adding, timeout=240, interval=0.5, what="all 10,000 signals added")
    assert run.generation == SIGNALS // EVERY
    assert run.status == WorkflowRun.Status.WAITING
    assert largest_history <= 2 * EVERY + 1, f"history grew to {largest_history} entries"
    assert HistoryEntry.objects.filter(run=run).aggregate(Max("seq"))["seq__max"] == 0  # a fresh generation waits
    assert not Signal.objects.filter(run=run, consumed_seq__isnull=True).exists()
    assert run.query() == {"total": expected, "every": EVERY, "_": 0}
