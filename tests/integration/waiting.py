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
    """Wait until every run is completed, failed or cancelled; return them fresh from the DB."""
    ids = [run.pk for run in runs]

    def all_finished() -> list[WorkflowRun] | None:
        fresh = list(WorkflowRun.objects.filter(pk__in=ids))
        return fresh if all(run.is_finished for run in fresh) and len(fresh) == len(ids) else None

    return wait_for(all_finished, timeout=timeout, what=f"{len(ids)} run(s) to finish")
