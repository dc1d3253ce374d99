"""Work that fails the same way every time ends its run visibly after a few tries: never an endless retry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable_django.models import WorkflowRun, WorkItem
from durable_django.store import advance, poison
from durable_django.testing import pass_time, run_until_idle, run_workflow
from tests.testapp.compositions import sleeper_then_step
from tests.testapp.models import Counter

pytestmark = pytest.mark.django_db
Status = WorkflowRun.Status


def test_an_advance_that_always_raises_blocks_the_run_after_three_tries_and_resume_goes_on(monkeypatch):
    run = run_workflow(sleeper_then_step, "poisoned")
    assert run.status == Status.WAITING

    def broken(self: object, seq: int, request: object, group: int | None) -> None:
        raise ArithmeticError("a bug in the store")

    monkeypatch.setattr(advance._Advance, "_open_step", broken)
    for _ in range(poison.TRIES + 2):  # bounded: each try pushes the next one later
        pass_time(timedelta(minutes=2))
    run.refresh_from_db()
    assert run.status == Status.BLOCKED
    assert run.error["type"] == "builtins.ArithmeticError"
    assert "could not advance this run 3 times: a bug in the store" in run.error["message"]
    assert "run.resume()" in run.error["message"]

    monkeypatch.undo()  # the fix is deployed
    run.resume()
    run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, 1)
    assert Counter.objects.get(name="poisoned").value == 1


def test_a_failure_that_goes_away_costs_nothing_but_a_delay(monkeypatch):
    run = run_workflow(sleeper_then_step, "flaky-store")
    calls = []
    original = advance._Advance._open_step

    def once(self: object, seq: int, request: object, group: int | None) -> None:
        calls.append(seq)
        if len(calls) == 1:
            raise ArithmeticError("only once")
        original(self, seq, request, group)  # type: ignore[arg-type]

    monkeypatch.setattr(advance._Advance, "_open_step", once)
    pass_time(timedelta(minutes=2))
    pass_time(timedelta(seconds=5))
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, 1)
    assert not WorkItem.objects.filter(run=run).exists()
