"""Replay a run's history against the code of this process, with no side effects.

Before a deploy, :func:`check` tells which live runs the new code would block; a history
exported with :func:`export` (from production, say) can be replayed later in a test with
:func:`check_export`. Replay runs workflow code only: no step runs, nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..core import codec, engine
from ..core.info import RunFacts
from ..core.registry import workflow_interpreter
from ..exceptions import InvalidRequest, WorkflowNotRegistered
from ..models import HistoryEntry, WorkflowRun
from ..store.history import outcome_of, recorded
from ..store.leases import database

__all__ = ["FORMAT", "check", "check_export", "export"]

#: Identifies the JSON document :func:`export` writes.
FORMAT = "durable_django.history/1"


def export(run: WorkflowRun) -> dict[str, Any]:
    """The run's current history as a JSON-ready document (its generation only)."""
    entries = HistoryEntry.objects.using(database()).of(run.pk).order_by("seq")
    return {
        "format": FORMAT,
        "workflow_id": run.workflow_id,
        "workflow": run.workflow_name,
        "generation": run.generation,
        "deadline_exceeded": run.deadline_exceeded,  # a cancel in history came from the deadline
        "input": codec.decode(run.input_json),
        "history": [
            {
                "seq": entry.seq,
                "kind": entry.kind,
                "name": entry.name,
                "args": codec.decode(entry.args_json),
                "status": entry.status,
                "result": None if entry.result_json is None else codec.decode(entry.result_json),
                "error": None if entry.error_json is None else codec.decode(entry.error_json),
            }
            for entry in entries
        ],
    }


def check(run: WorkflowRun) -> str | None:
    """Why this process's code would block ``run`` on replay, or None if it replays cleanly."""
    entries = HistoryEntry.objects.using(database()).of(run.pk)
    history = {entry.seq: recorded(entry) for entry in entries}
    return _replay(run.workflow_name, run.input_json, history, run.workflow_id, run.generation, run.deadline_exceeded)


def check_export(document: dict[str, Any]) -> str | None:
    """:func:`check` for a document written by :func:`export`."""
    if document.get("format") != FORMAT:
        raise InvalidRequest(f"not a history export ({FORMAT!r} expected, got {document.get('format')!r}).")
    history: dict[int, engine.Recorded] = {}
    for item in document["history"]:
        result = None if item["result"] is None else codec.encode(item["result"])
        error = None if item["error"] is None else codec.encode(item["error"])
        outcome = outcome_of(item["status"], result, error)
        history[item["seq"]] = engine.Recorded(item["kind"], item["name"], codec.encode(item["args"]), outcome)
    workflow_id, generation = document.get("workflow_id", ""), document.get("generation", 0)
    deadline = bool(document.get("deadline_exceeded", False))  # absent from exports written before it
    return _replay(document["workflow"], codec.encode(document["input"]), history, workflow_id, generation, deadline)


def _replay(
    workflow: str,
    input_json: str,
    history: dict[int, engine.Recorded],
    workflow_id: str = "",
    generation: int = 0,
    deadline: bool = False,
) -> str | None:
    try:
        interpreter = workflow_interpreter(workflow, input_json)
    except WorkflowNotRegistered as error:
        return str(error)
    # What workflow_info(), now() and uuid4() read cannot change what the code yields unless the
    # code branches on them; a check replays with stand-ins (this process's clock, a fixed id).
    facts = RunFacts(workflow_id=workflow_id, run_id=workflow_id, workflow_name=workflow, generation=generation)
    interpreter.reads.bind(lambda: facts, recorded_time=lambda seq: None, clock=lambda: datetime.now(UTC))
    try:
        # A cancel recorded in history is raised as the run got it: DeadlineExceeded if the deadline sent it.
        decision = engine.decide(interpreter, history, deadline=deadline)
    finally:
        interpreter.close()
    return decision.end.message if isinstance(decision.end, engine.Block) else None
