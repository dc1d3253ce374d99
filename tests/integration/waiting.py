"""Bounded polling for tests that watch other processes work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from durable_django.models import WorkflowRun

T = TypeVar("T")


def wait_for(check: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = "condition") -> T:
    """Return ``check()`` once it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_finished(runs: Iterable[WorkflowRun], *, timeout: float) -> list[WorkflowRun]:
    """Wait until every run is completed, failed or cancelled; return them fresh, in the same order."""
    ids = [run.pk for run in runs]

    def all_finished() -> list[WorkflowRun] | None:
        fresh = WorkflowRun.objects.in_bulk(ids)
        done = len(fresh) == len(ids) and all(run.is_finished for run in fresh.values())
        return [fresh[pk] for pk in ids] if done else None

    return wait_for(all_finished, timeout=timeout, what=f"{len(ids)} run(s) to finish")


def wait_status(run: WorkflowRun, status: str, *, timeout: float) -> WorkflowRun:
    """Wait until ``run`` has ``status``; return it fresh from the DB."""

    def reached() -> WorkflowRun | None:
        fresh = WorkflowRun.objects.get(pk=run.pk)
        return fresh if fresh.status == status else None

    return wait_for(reached, timeout=timeout, what=f"run {run.workflow_id} to be {status}")
