"""Assertions on runs: their history, and whether a recorded history still replays."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..models import HistoryEntry, WorkflowRun
from ..ops import replay
from ..runs import get_run

__all__ = ["assert_history", "assert_replays", "describe"]


def describe(entry: HistoryEntry) -> str:
    """One history entry as ``assert_history`` spells it, such as ``"step shop.workflows.charge_card"``.

    ``kind name``, then ``(status)`` unless it is completed; entries inside an ``all_of`` or
    ``any_of`` are indented by two spaces.
    """
    text = " ".join(part for part in (entry.kind, entry.name) if part)
    if entry.status != HistoryEntry.Status.COMPLETED:
        text += f" ({entry.status})"
    return text if entry.group_seq is None else "  " + text


def assert_history(run: WorkflowRun | str, expected: Sequence[str]) -> None:
    """Fail with a diff unless ``run``'s history, spelled by :func:`describe`, is ``expected``.

    For example ``["step shop.workflows.charge_card", "sleep", "signal shipped (scheduled)"]``:
    a completed step, a sleep that ended, and a signal wait still open.
    """
    run = get_run(run)
    fresh = WorkflowRun.objects.using(run._state.db).get(pk=run.pk)
    actual = [describe(entry) for entry in fresh.history.order_by("seq")]
    if actual == list(expected):
        return
    diff = [line for line in difflib.ndiff(list(expected), actual) if not line.startswith("? ")]
    raise AssertionError(
        f"the history of run {fresh.workflow_id!r} ({fresh.workflow_name}, {fresh.status}) "
        "is not the expected one (- expected, + actual):\n" + "\n".join(diff)
    )


def assert_replays(history: WorkflowRun | Mapping[str, Any] | str | os.PathLike[str]) -> None:
    """Fail with the non-determinism message unless this code replays ``history`` as recorded.

    ``history`` is a run, an export (``durable_runs <workflow_id> --json``, or
    the admin's *Download history JSON*) as a dict, or the path of such a JSON file.
    Replay runs workflow code only: no step runs and nothing is written.
    """
    where = ""
    if isinstance(history, WorkflowRun):
        message = replay.check(history)
        name, workflow_id = history.workflow_name, history.workflow_id
    else:
        if isinstance(history, Mapping):
            document = dict(history)
        else:
            where = f"{history}: "
            document = json.loads(Path(history).read_text())
        message = replay.check_export(document)
        name, workflow_id = str(document.get("workflow")), str(document.get("workflow_id"))
    if message is not None:
        raise AssertionError(f"{where}the run {workflow_id!r} ({name}) does not replay with this code: {message}")
