"""Before a deploy: replay every run that may still advance against the code about to ship.

A run whose history the new code does not reproduce would be blocked by the first worker
running that code. :func:`check_runs` finds them without changing anything: replay runs
workflow code only, no step runs and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from ..models import WorkflowRun
from ..store.leases import database
from . import replay

__all__ = ["CHECKED", "Checked", "check_runs", "runs_to_check"]

#: Runs that replay again: live ones, and blocked ones (a resume replays them).
CHECKED = (*WorkflowRun.LIVE, WorkflowRun.Status.BLOCKED)


@dataclass(frozen=True, slots=True)
class Checked:
    """One run and why this code would block it; ``problem`` is None when it replays cleanly."""

    run: WorkflowRun
    problem: str | None
    #: The run's history export, when asked for.
    export: dict[str, Any] | None = None


def runs_to_check(workflow: str | None = None) -> QuerySet[WorkflowRun]:
    """Pending, running, waiting and blocked runs (of ``workflow`` only, if given)."""
    runs = WorkflowRun.objects.using(database()).filter(status__in=CHECKED)
    return runs.filter(workflow_name=workflow) if workflow else runs


def check_runs(runs: QuerySet[WorkflowRun], *, chunk_size: int = 200, export: bool = False) -> Iterator[Checked]:
    """Replay each of ``runs`` in primary-key order, a chunk of rows at a time, with ``replay.check``.

    A replay that raises (a bug in workflow code that only shows on replay, say) counts as a
    problem too, with the exception as its message.
    """
    last = None
    while True:
        chunk = runs.order_by("pk")
        if last is not None:
            chunk = chunk.filter(pk__gt=last)
        rows = list(chunk[:chunk_size])
        if not rows:
            return
        for run in rows:
            try:
                problem = replay.check(run)
            except Exception as error:
                problem = f"replay raised {type(error).__module__}.{type(error).__qualname__}: {error}"
            yield Checked(run, problem, replay.export(run) if export else None)
        last = rows[-1].pk
