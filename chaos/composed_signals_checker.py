"""The composed workload's signal invariant: every committed signal taken once, by a wait that returned it, or unread.

Waits of a name take signals oldest first; a loop that took its "exit" took every "submit"
sent before it; no loop idled out, and no ballot's wait timed out, while a signal committed
before its timer came due sat unread (signals.md, parallel.md).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from .composed import ComposedPlan


def payload(text: str | None) -> Any:
    """A JSON column's value; ``None`` for an empty one."""
    return json.loads(text) if text else None


def _taken_by_waits(run: Any, entries: list[Any]) -> list[str]:
    """The nonces the run's waits returned, from its result when it completed, else from its history."""
    result = run.result if run.status == "completed" else None
    if isinstance(result, dict) and ("received" in result or "stop" in result or "exit" in result):
        taken = list(result.get("received", []))
        taken += [result[name] for name in ("exit", "stop") if result.get(name)]
        return taken
    taken = []
    for entry in entries:
        value = payload(entry.result_json) if entry.kind == "signal" and entry.status == "completed" else None
        if isinstance(value, dict) and "nonce" in value:
            taken.append(value["nonce"])
    return taken


def check_signals(
    plan: ComposedPlan,
    run: Any,
    entries: list[Any],
    inbox: list[Any],
    receipts: list[Any],
    out: list[Any],
    figures: Counter[str],
) -> None:
    rows = {(payload(sig.payload_json) or {}).get("nonce"): sig for sig in inbox}
    sent = {receipt.nonce: receipt for receipt in receipts}
    taken = Counter(_taken_by_waits(run, entries))
    for nonce, receipt in sent.items():
        row = rows.get(nonce)
        if row is None:
            out.append({"ref": plan.ref, "nonce": nonce, "name": receipt.action, "why": "committed signal lost"})
            continue
        if row.consumed_seq is not None and taken[nonce] != 1:
            out.append({"ref": plan.ref, "nonce": nonce, "why": f"taken from the inbox, returned {taken[nonce]} times"})
        if row.consumed_seq is None and taken[nonce]:
            out.append({"ref": plan.ref, "nonce": nonce, "why": "returned by a wait but still unread in the inbox"})
        figures["signals_taken" if row.consumed_seq is not None else "signals_unread"] += 1
    for nonce in rows:
        if nonce not in sent:
            out.append({"ref": plan.ref, "nonce": nonce, "why": "an inbox signal nobody committed"})
    for nonce in taken:
        if nonce not in sent:
            out.append({"ref": plan.ref, "nonce": nonce, "why": "a wait returned a signal nobody committed"})
    if plan.kind == "ballot" and run.status == "completed":
        _ballot(plan, run, entries, rows, sent, out)
    if plan.kind != "loop" or run.status != "completed":
        return
    result = run.result or {}
    received = result.get("received", [])
    by_id = sorted((rows[n].pk, n) for n in received if n in rows)
    if [n for _, n in by_id] != received:
        out.append({"ref": plan.ref, "why": "submits taken out of order", "received": received})
    order = {record["nonce"]: record["order"] for record in plan.signals}
    unread = [n for n, row in rows.items() if row.consumed_seq is None and n in sent]
    if result.get("status") == "exited":
        exit_order = order.get(result.get("exit"), 0)
        for nonce in unread:
            if sent[nonce].action == "submit" and order.get(nonce, 1 << 30) < exit_order:
                out.append({"ref": plan.ref, "nonce": nonce, "why": "a submit sent before the exit was left unread"})
    if result.get("status") == "idle":
        fire_at = _deciding_timer(entries)
        for nonce in unread:
            committed_at = sent[nonce].committed_at
            if fire_at is not None and committed_at is not None and committed_at < fire_at:
                out.append(
                    {
                        "ref": plan.ref,
                        "nonce": nonce,
                        "why": "the loop idled out while a signal committed before its timer came due sat unread",
                        "committed_at": committed_at,
                        "fire_at": fire_at,
                    }
                )


def _ballot(
    plan: ComposedPlan, run: Any, entries: list[Any], rows: dict[Any, Any], sent: dict[str, Any], out: list[Any]
) -> None:
    """Every wait of the group takes a vote while one committed before its deadline is in the inbox."""
    received = (run.result or {}).get("received", [])
    voters = plan.args[0]
    if len(received) >= voters:
        return
    fire_at = _deciding_timer(entries)
    for nonce, row in rows.items():
        committed_at = sent[nonce].committed_at if nonce in sent else None
        if row.consumed_seq is None and committed_at is not None and fire_at is not None and committed_at < fire_at:
            out.append(
                {
                    "ref": plan.ref,
                    "nonce": nonce,
                    "why": f"{voters - len(received)} waits timed out while this vote, committed before, sat unread",
                }
            )


def _deciding_timer(entries: list[Any]) -> Any:
    """The fire_at of the timer (a sleep, or a wait's timeout) that ended an idle loop."""
    for entry in reversed(entries):
        if entry.status != "completed" or entry.fire_at is None:
            continue
        if entry.kind == "sleep" or (entry.kind == "signal" and entry.result_json in (None, "null")):
            return entry.fire_at
    return None
