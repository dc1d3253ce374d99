"""What a workflow generator reads of its run (``durable.workflow_info()``, ``now()``, ``uuid4()``), from the database.

The run's facts load on the first ``workflow_info()`` or ``uuid4()`` only; times come from
the history the advance reads; the clock is the database's. A time read live is recorded
with the entry written at that position (:func:`written_at`), so replay reads it back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..conf import settings
from ..core.info import RunFacts
from ..core.interpreter import Interpreter
from ..models import WorkflowRun
from .clock import database_now

__all__ = ["bind", "facts_loader", "written_at"]


def facts_loader(using: str, run_id: uuid.UUID) -> Callable[[], RunFacts]:
    """Load the facts of run ``run_id`` when the code first asks for them."""

    def load() -> RunFacts:
        row = (
            WorkflowRun.objects.using(using)
            .filter(pk=run_id)
            .values_list("workflow_id", "workflow_name", "generation", "parent__workflow_id", "created_at")
            .get()
        )
        workflow_id, name, generation, parent_workflow_id, created_at = row
        return RunFacts(
            workflow_id=workflow_id,
            run_id=str(run_id),
            workflow_name=name,
            generation=generation,
            parent_workflow_id=parent_workflow_id,
            started_at=created_at,
            suggest_after=settings.CONTINUE_AS_NEW_SUGGESTED_AFTER,
        )

    return load


def bind(
    interpreter: Interpreter, using: str, run_id: uuid.UUID, recorded_time: Callable[[int], datetime | None]
) -> None:
    """Let the generator of run ``run_id`` read its run: once more at every advance, with that advance's history."""
    interpreter.reads.bind(facts_loader(using, run_id), recorded_time=recorded_time, clock=lambda: database_now(using))


def written_at(interpreter: Interpreter, seq: int) -> dict[str, Any]:
    """The ``scheduled_at`` to write for the entry at ``seq``: the time the code read live there, if it did."""
    at = interpreter.reads.unwritten.pop(seq, None)
    return {} if at is None else {"scheduled_at": at}
