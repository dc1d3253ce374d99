"""What the real system did, read back in the model's terms: runs by scope, traces, attempts, rows.

Read from the database (public models: runs, their signals) and from the :mod:`.journal`
(what workflow code and steps reported). Anything that is wrong whatever the model says
(a replay that saw a different value, an external attempt that ran twice, an idempotency
key shared by two steps) is listed in ``anomalies``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from durable_django.models import Signal, Update, WorkflowRun
from durable_django.store import updates
from durable_django.store.leases import database
from tests.testapp.models import Counter

from . import journal
from .model_runs import CONTINUED
from .workflows import atomic_row


@dataclass
class Observed:
    runs: dict[str, dict[str, Any]]
    traces: dict[str, list[list[Any]]]
    attempts: dict[str, list[int]]
    atomic: dict[str, int]
    replies: list[str]
    updates: dict[str, list[Any]] = field(default_factory=dict)  # update id -> what its caller gets
    anomalies: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # scope -> workflow_id, for messages


def tree(root: WorkflowRun) -> list[WorkflowRun]:
    """The run and all its descendants, parents first."""
    found, frontier = [root], [root.pk]
    while frontier:
        children = list(WorkflowRun.objects.filter(parent_id__in=frontier).order_by("created_at", "workflow_id"))
        found += children
        frontier = [child.pk for child in children]
    return found


def scope_of(run: WorkflowRun) -> str:
    return str(json.loads(run.input_json)["args"][1])


def _short(error_json: str | None) -> str | None:
    if not error_json:
        return None
    return str(json.loads(error_json)["type"]).rsplit(".", 1)[-1]


def run_view(run: WorkflowRun) -> dict[str, Any]:
    inbox = Signal.objects.filter(run=run, consumed_seq__isnull=True).order_by("id")
    return {
        "status": run.status,
        "result": json.loads(run.result_json) if run.status == "completed" and run.result_json else None,
        "error": _short(run.error_json) if run.status in ("failed", "cancelled", "blocked") else None,
        "state": json.loads(run.state_json) if run.state_json else None,
        "gen": run.generation,
        "inbox": [[signal.name, json.loads(signal.payload_json)] for signal in inbox],
        "updates": [
            [update.name, json.loads(update.payload_json)]
            for update in Update.objects.filter(run=run, consumed_seq__isnull=True).order_by("id")
        ],
    }


def observe(
    root: WorkflowRun,
    replies: list[str],
    records: list[dict[str, Any]],
    kills: bool = False,
    sent: dict[str, str] | None = None,
) -> Observed:
    """``kills``: advances may have been rolled back after workflow code reported what it saw.

    ``sent``: each update event's id -> the scope of the run it went to.
    """
    runs = tree(root)
    views = {scope_of(run): run_view(run) for run in runs}
    observed = Observed(views, {}, {}, {}, replies, ids={scope_of(run): run.workflow_id for run in runs})
    by_scope = {scope_of(run): run for run in runs}
    for update_id, scope in (sent or {}).items():
        observed.updates[update_id] = caller_gets(by_scope.get(scope), update_id)
    _traces(observed, records, kills)
    _attempts(observed, records)
    return observed


def caller_gets(run: WorkflowRun | None, update_id: str) -> list[Any]:
    """What ``run.update()`` for this id would give now, read from the database as the caller reads it."""
    answer = None if run is None else updates.read_answer(database(), run.pk, update_id)
    if answer is None:
        return ["refused"]
    if answer.answered and answer.rejection is not None:
        # A rejection by continue_as_new is compared by the words the docs promise, not its whole text.
        return ["rejected", CONTINUED if CONTINUED in answer.rejection else answer.rejection]
    if answer.answered:
        return ["reply", None if answer.reply_json is None else json.loads(answer.reply_json)]
    return ["finished"] if answer.run_finished else ["pending"]


def _traces(observed: Observed, records: list[dict[str, Any]], kills: bool) -> None:
    """What each yield returned, as committed.

    Without kills every report of a yield must agree (a replay that saw something else is an
    anomaly). With kills, reports of advances that were rolled back are left out
    (:func:`.journal.committed_yields`).
    """
    seen: dict[tuple[str, int, int], Any] = {}
    if kills:
        seen = {key: record["o"] for key, record in journal.committed_yields(records).items()}
    for record in [] if kills else records:
        if record["t"] != "yield":
            continue
        key = (record["scope"], record["gen"], record["i"])
        # The one outcome a replay may change: a step's result fed to the live generator on the
        # one-statement path while a cancel was landing; the statement then refuses it and the
        # run records Cancelled there, which is all every later execution sees (docs/cancellation.md).
        superseded = record["o"] == ["raise", "Cancelled"]
        if key in seen and seen[key] != record["o"] and not superseded:
            observed.anomalies.append(
                f"run {key[0]} gen {key[1]} yield #{key[2]} returned {seen[key]} once and {record['o']} on a replay"
            )
        if key in seen and seen[key] != record["o"]:
            # What that one execution went on to see after the refused result is not kept either.
            for later in [other for other in seen if other[:2] == key[:2] and other[2] > key[2]]:
                del seen[later]
        seen[key] = record["o"]
    seen = {key: outcome for key, outcome in seen.items() if key[0] in observed.runs}
    for (scope, gen, index), outcome in seen.items():
        observed.traces.setdefault(scope, []).append([gen, index, outcome])
    for scope in observed.runs:
        observed.traces[scope] = sorted(observed.traces.get(scope, []))


def _attempts(observed: Observed, records: list[dict[str, Any]]) -> None:
    starts: dict[str, list[int]] = {}
    keys: dict[str, set[str]] = {}
    kinds: dict[str, str] = {}
    for record in records:
        if record["t"] != "attempt" or record["phase"] != "start" or _owner(record["tag"]) not in observed.runs:
            continue
        starts.setdefault(record["tag"], []).append(record["n"])
        keys.setdefault(record["tag"], set()).add(record["key"])
        kinds[record["tag"]] = record["kind"]
    owners: dict[str, str] = {}
    for step_tag, numbers in starts.items():
        observed.attempts[step_tag] = sorted(set(numbers))
        if kinds[step_tag] == "external" and len(numbers) != len(set(numbers)):
            observed.anomalies.append(f"external step {step_tag} ran one attempt twice: attempts {sorted(numbers)}")
        if len(keys[step_tag]) != 1:
            observed.anomalies.append(f"step {step_tag} had several idempotency keys: {sorted(keys[step_tag])}")
        for key in keys[step_tag]:
            if key in owners:
                observed.anomalies.append(f"steps {owners[key]} and {step_tag} share the idempotency key {key}")
            owners[key] = step_tag
        if kinds[step_tag] == "atomic":
            row = Counter.objects.filter(name=atomic_row(next(iter(keys[step_tag])))).first()
            if row is not None:
                observed.atomic[step_tag] = row.value


def _owner(step_tag: str) -> str:
    """The scope of the run a step tag belongs to: everything before its last ``.<gen>:<node>#<n>``."""
    return step_tag.rsplit(".", 1)[0]
