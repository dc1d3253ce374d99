"""Runs as text for a terminal: a table of runs, one run with its history, and a run followed live."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from ..core import codec
from ..core.requests import Kind
from ..models import HistoryEntry, WorkflowRun
from ..store.leases import database

__all__ = ["follow", "run_detail", "run_table", "select_runs", "table"]

#: Longest cell shown; longer values are cut with an ellipsis.
WIDTH = 60


def select_runs(*, statuses: Sequence[str] = (), workflow: str | None = None) -> QuerySet[WorkflowRun]:
    """Runs, newest first, with the kind and name of their last history entry as ``at_kind``/``at_name``."""
    runs = WorkflowRun.objects.using(database()).all()
    if statuses:
        runs = runs.filter(status__in=statuses)
    if workflow:
        runs = runs.filter(workflow_name=workflow)
    last = HistoryEntry.objects.positions().filter(run=OuterRef("pk")).order_by("-seq")
    return runs.annotate(at_kind=Subquery(last.values("kind")[:1]), at_name=Subquery(last.values("name")[:1])).order_by(
        "-created_at", "pk"
    )


def run_table(runs: Iterable[WorkflowRun]) -> list[str]:
    """One line per run of :func:`select_runs`, under a header."""
    now = timezone.now()
    rows = [
        [
            run.workflow_id,
            run.workflow_name,
            run.status,
            " ".join(part for part in (getattr(run, "at_kind", ""), getattr(run, "at_name", "")) if part),
            _when(run.created_at),
            _duration((run.finished_at or now) - run.created_at),
        ]
        for run in runs
    ]
    return table(["WORKFLOW ID", "WORKFLOW", "STATUS", "LAST REQUEST", "CREATED", "DURATION"], rows)


def run_detail(run: WorkflowRun) -> list[str]:
    """The run's fields, its children, then its history as a table."""
    fields = [
        ("workflow id", run.workflow_id),
        ("workflow", run.workflow_name),
        ("run id", str(run.pk)),
        ("status", run.status + (" (cancel requested)" if run.cancel_requested else "")),
        ("created", _when(run.created_at)),
        ("finished", _when(run.finished_at)),
        ("input", _json(run.input_json)),
    ]
    if run.generation:
        fields.append(("generation", str(run.generation)))
    if run.result_json is not None:
        fields.append(("result", _json(run.result_json)))
    if run.error is not None:
        fields.append(("error", f"{run.error.get('type')}: {run.error.get('message')}"))
    if run.state_json is not None:
        fields.append(("state", _json(run.state_json)))
    if run.parent_id is not None:
        parent = WorkflowRun.objects.using(database()).filter(pk=run.parent_id).values_list("workflow_id", flat=True)
        fields.append(("parent", f"{parent.first()} (at #{run.parent_seq})"))
    children = run.children.order_by("created_at").values_list("workflow_id", "status")
    fields.extend(("child", f"{workflow_id} ({status})") for workflow_id, status in children)
    lines = [f"{label + ':':<12} {value}" for label, value in fields]
    entries = run.history.order_by("seq").select_related("child")
    rows = [
        [str(e.seq), _indent(e) + e.kind, e.name, e.status, str(e.attempts or ""), _entry_detail(e)] for e in entries
    ]
    return [*lines, "", *table(["#", "KIND", "NAME", "STATUS", "ATTEMPTS", "DETAIL"], rows)]


def follow(
    run: WorkflowRun,
    *,
    interval: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """A line for each change to ``run`` and its history, as it happens, until the run stops or ``timeout``.

    Polls every ``interval`` seconds. Stops once the run is completed, failed, cancelled or
    blocked (nothing happens to a blocked run until someone resumes it). Afterwards
    ``run`` holds the last state seen.
    """
    deadline = time.monotonic() + timeout
    seen: dict[int, tuple[str, int]] = {}
    status, generation = "", run.generation
    while True:
        run.refresh_from_db()
        if run.generation != generation:
            generation, seen = run.generation, {}
            yield f"{_clock()} continued as new (generation {generation})"
        for entry in run.history.order_by("seq").select_related("child"):
            if seen.get(entry.seq) != (entry.status, entry.attempts):
                seen[entry.seq] = (entry.status, entry.attempts)
                detail = _entry_detail(entry)
                name = f" {entry.name}" if entry.name else ""
                yield f"{_clock()} #{entry.seq} {entry.kind}{name} {entry.status}" + (f"  {detail}" if detail else "")
        if run.status != status:
            status = run.status
            yield f"{_clock()} run {status}" + _ending(run)
        if run.status not in WorkflowRun.LIVE or time.monotonic() >= deadline:
            return
        sleep(max(0.0, min(interval, deadline - time.monotonic())))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, cells cut at :data:`WIDTH` characters."""
    cut = [[_cut(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[column]) for row in cut) for column in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cut]


def _ending(run: WorkflowRun) -> str:
    if run.status == WorkflowRun.Status.COMPLETED:
        return f": {_json(run.result_json)}"
    if run.error is not None:
        return f": {run.error.get('type')}: {run.error.get('message')}"
    return ""


def _entry_detail(entry: HistoryEntry) -> str:
    arguments = _arguments(entry.kind, entry.args_json)
    if entry.status == HistoryEntry.Status.COMPLETED:
        outcome = "" if entry.kind in {Kind.SLEEP, Kind.STATE, Kind.ALL_OF} else f"-> {_json(entry.result_json)}"
        if entry.kind == Kind.STATE:
            arguments = _json(entry.args_json)
    elif entry.error_json is not None:
        error = codec.decode(entry.error_json)
        label = "error" if entry.status == HistoryEntry.Status.FAILED else "last error"
        outcome = f"{label}: {error.get('type')}: {error.get('message')}"
    elif entry.fire_at is not None:
        outcome = f"{'fires' if entry.kind == Kind.SLEEP else 'times out'} {_when(entry.fire_at)}"
    else:
        outcome = ""
    if entry.child is not None:
        outcome = f"{entry.child.workflow_id} {outcome}".rstrip()
    return " ".join(part for part in (arguments, outcome) if part)


def _indent(entry: HistoryEntry) -> str:
    """Entries inside an ``all_of``/``any_of`` are indented under it."""
    return "" if entry.group_seq is None else "  "


def _arguments(kind: str, args_json: str) -> str:
    if kind not in {Kind.STEP, Kind.CHILD}:
        return ""
    value = codec.decode(args_json)
    shown = [_compact(arg) for arg in value.get("args", [])]
    shown += [f"{key}={_compact(arg)}" for key, arg in value.get("kwargs", {}).items()]
    return f"({', '.join(shown)})"


def _json(text: str | None) -> str:
    return "-" if text is None else _compact(codec.decode(text))


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def _cut(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _clock() -> str:
    return timezone.localtime().strftime("%H:%M:%S")


def _duration(elapsed: timedelta) -> str:
    seconds = max(0.0, elapsed.total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
