"""Where the real run and the model disagree, as sentences; and how a failing case is printed."""

from __future__ import annotations

import json
from typing import Any

from .model import Event, Prediction
from .observe import Observed
from .program import Program, describe

RUN_FIELDS = ("status", "result", "error", "state", "gen", "inbox", "updates")


def differences(expected: Prediction, actual: Observed, *, fields: tuple[str, ...] = RUN_FIELDS) -> list[str]:
    """Every disagreement; empty when the real system did what the model says."""
    found = list(actual.anomalies)
    if expected.replies != actual.replies:
        found.append(f"event replies: model {expected.replies}, real {actual.replies}")
    for update_id in sorted(set(expected.updates) | set(actual.updates)):
        want_u, got_u = expected.updates.get(update_id), actual.updates.get(update_id)
        if want_u != got_u:
            found.append(f"update {update_id}, its caller gets: model {_short(want_u)}, real {_short(got_u)}")
    if set(expected.runs) != set(actual.runs):
        found.append(f"runs: model {sorted(expected.runs)}, real {sorted(actual.runs)}")
    for scope in sorted(set(expected.runs) & set(actual.runs)):
        want, got = expected.runs[scope], actual.runs[scope]
        for name in fields:
            if want[name] != got[name]:
                found.append(f"run {scope} {name}: model {_short(want[name])}, real {_short(got[name])}")
        if expected.traces.get(scope, []) != actual.traces.get(scope, []):
            found.append(
                f"run {scope} trace:{_trace_diff(expected.traces.get(scope, []), actual.traces.get(scope, []))}"
            )
    for step_tag in sorted(set(expected.attempts) | set(actual.attempts)):
        want_n, got_n = expected.attempts.get(step_tag, []), actual.attempts.get(step_tag, [])
        if want_n != got_n:
            found.append(f"step {step_tag} attempts: model {want_n}, real {got_n}")
    if expected.atomic != actual.atomic:
        found.append(f"atomic rows committed: model {expected.atomic}, real {actual.atomic}")
    return found


def _trace_diff(want: list[list[Any]], got: list[list[Any]]) -> str:
    wanted = {(gen, index): outcome for gen, index, outcome in want}
    gotten = {(gen, index): outcome for gen, index, outcome in got}
    lines = []
    for key in sorted(set(wanted) | set(gotten)):
        if wanted.get(key) != gotten.get(key):
            lines.append(
                f"\n    gen {key[0]} yield #{key[1]}: model {_short(wanted.get(key))}, real {_short(gotten.get(key))}"
            )
    return "".join(lines[:8]) + ("\n    ..." if len(lines) > 8 else "")


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def report(program: Program, events: list[Event], problems: list[str], extra: str = "") -> str:
    """A failing case as a reader wants it: the program, the events, then what differed."""
    lines = ["program:", describe(program, "    "), "events:"]
    lines += [f"    {json.dumps(event)}" for event in events] or ["    (none)"]
    if extra:
        lines.append(extra)
    lines.append("disagreements:")
    lines += [f"  - {problem}" for problem in problems]
    lines.append("as data: " + json.dumps({"program": program, "events": events}, separators=(",", ":")))
    return "\n".join(lines)
