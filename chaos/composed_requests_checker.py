"""The composed workload's invariants of state, patches, deadlines and updates (chaos/composed_checker.py calls them).

- ``loop_state`` (signals.md, "Publishing state"): a finished loop's ``run.state`` is the count
  its result took, and its history published each count once, in order: never behind, never
  ahead, never twice.
- ``saga_patch`` (versioning.md, ``patched``): every saga that reached its compensation recorded
  the refund's patch marker exactly once, before the refund, on the new branch; none that did not.
- ``deadlines`` (cancellation.md, "Deadlines"): a run's deadline is its start plus its timeout;
  ``DeadlineExceeded`` comes only from its own deadline and never before it, and a run whose
  deadline fired ended cancelled by it; a saga waiting for an approval no one sends ended so.
  That its compensation ran once is ``saga_ledger``'s and ``saga_cleanup``'s to say.
- ``counter_updates`` (updates.md): every update taken is answered once; the replies follow the
  applied amounts in the order taken (each total the sum so far) and the run's result names
  each applied update once; a bad amount is rejected, never applied; what each caller heard
  (a reply, a rejection, ``RunFinished``) is what the database holds; an update is left unread
  only by a counter that idled out, and only one sent after its wait timed out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, TypeGuard

from .composed import ComposedPlan
from .composed_signals_checker import payload

#: chaos.shop.composed.REFUND_PATCH (not imported: the checker's tests load no shop models).
REFUND_PATCH = "refund-by-reference"
DEADLINE_EXCEEDED = "durable_django.exceptions.DeadlineExceeded"
#: ``deadline_at`` (the clock read, plus the timeout) and then ``created_at`` (the run's insert) are two
#: statements of the start's transaction: the deadline is at most the start plus the timeout, and less
#: only by the time between them (a stall of the starting thread, at most this long).
DEADLINE_SLACK = 1.0
DESCRIPTIONS = {
    "loop_state": "a finished loop's published state is what its result took, each count published once, in order",
    "saga_patch": "every saga that compensated recorded the refund's patch marker exactly once, before the refund",
    "deadlines": "a deadline is the start plus the timeout, never fires early, and a run it fired on ended by it",
    "counter_updates": "every update answered once, replies applied once in order, callers heard what the run did",
}


def check_loop_state(plan: ComposedPlan, run: Any, entries: list[Any], out: list[Any], figures: Counter[str]) -> None:
    if plan.kind != "loop" or run.status != "completed":
        return
    taken = len((run.result or {}).get("received", []))
    published = [payload(entry.args_json) for entry in entries if entry.kind == "state"]
    expected = [{"received": n} for n in range(1, taken + 1)]
    figures["loops published state"] += bool(published)
    problems = []
    if published != expected:
        problems.append(f"published {published[:12]}, expected 1 to {taken} once each")
    if run.state != (expected[-1] if expected else None):
        problems.append(f"run.state is {run.state}, its result took {taken}")
    if problems:
        out.append({"ref": plan.ref, "problems": problems})


def check_patch(plan: ComposedPlan, run: Any, entries: list[Any], out: list[Any], figures: Counter[str]) -> None:
    if plan.kind != "saga":
        return
    markers = [entry for entry in entries if entry.kind == "patched"]
    refunds = [entry for entry in entries if entry.kind == "step" and entry.name.endswith(".refund_order")]
    figures["saga patch markers"] += len(markers)
    problems = []
    if refunds:
        if [(marker.name, marker.result_json) for marker in markers] != [(REFUND_PATCH, "true")]:
            problems.append(f"markers {[(m.seq, m.name, m.result_json) for m in markers]} before a refund")
        elif markers[0].seq > refunds[0].seq:
            problems.append(f"the marker #{markers[0].seq} after the refund #{refunds[0].seq}")
    elif markers:
        problems.append(f"markers {[m.seq for m in markers]} and no refund after them")
    if problems:
        out.append({"ref": plan.ref, "status": run.status, "problems": problems})


def check_deadline(plan: ComposedPlan, run: Any, entries: list[Any], out: list[Any], figures: Counter[str]) -> None:
    error_type = (run.error or {}).get("type")
    by_deadline = run.status == "cancelled" and error_type == DEADLINE_EXCEEDED
    problems = []
    if plan.timeout is None:
        if run.deadline_at is not None or run.deadline_exceeded or by_deadline:
            problems.append(f"a deadline no one gave it: deadline_at {run.deadline_at}, ended {error_type}")
    elif run.deadline_at is None:
        problems.append(f"started with timeout={plan.timeout} s and no deadline_at")
    else:
        spread = (run.deadline_at - run.created_at).total_seconds()
        if not plan.timeout - DEADLINE_SLACK <= spread <= plan.timeout + 0.001:
            problems.append(f"deadline_at is the start + {spread:.2f} s, timeout={plan.timeout} s")
    if run.deadline_exceeded and not by_deadline:
        problems.append(f"its deadline fired, yet it ended {run.status} ({error_type})")
    if by_deadline and not run.deadline_exceeded:
        problems.append("DeadlineExceeded, yet its deadline never fired")
    if by_deadline and run.deadline_at is not None:
        if run.cancel_requested_at is None or run.cancel_requested_at < run.deadline_at:
            problems.append(f"the deadline {run.deadline_at} fired early, at {run.cancel_requested_at}")
        early = [
            entry.seq
            for entry in entries
            if entry.status == "cancelled" and entry.finished_at is not None and entry.finished_at < run.deadline_at
        ]
        if early:
            problems.append(f"entries {early} cancelled before the deadline {run.deadline_at}")
    approval = plan.kind == "saga" and len(plan.args) > 6 and plan.args[6]
    if approval and not by_deadline:  # nothing but its deadline (or a cancel, none planned) ends its wait
        problems.append(f"waited for an approval no one sends, yet ended {run.status} ({error_type})")
    if plan.timeout is not None:
        figures[f"{plan.kind} deadlines exceeded" if by_deadline else f"{plan.kind} deadlines met"] += 1
    if problems:
        out.append({"ref": plan.ref, "status": run.status, "timeout": plan.timeout, "problems": problems})


def _valid(amount: Any) -> TypeGuard[int]:
    return isinstance(amount, int) and not isinstance(amount, bool) and amount > 0


def check_updates(
    plan: ComposedPlan, run: Any, entries: list[Any], rows: list[Any], out: list[Any], figures: Counter[str]
) -> None:
    """The counter's updates (its rows of the update table) against its result and its callers' records."""
    if plan.kind != "counter":
        return
    problems: list[str] = []
    sent = {record["update_id"]: record for record in plan.updates}
    by_id = {row.update_id: row for row in rows}
    for row in rows:
        answered = row.reply_json is not None or row.rejection is not None
        if row.update_id not in sent:
            problems.append(f"{row.update_id}: an update nobody sent")
        if row.reply_json is not None and row.rejection is not None:
            problems.append(f"{row.update_id}: replied to and rejected")
        if row.consumed_seq is not None and not answered:
            problems.append(f"{row.update_id}: taken by #{row.consumed_seq} and never answered")
        if row.consumed_seq is None and answered:
            problems.append(f"{row.update_id}: answered and never taken")
        amount = (payload(row.payload_json) or {}).get("amount")
        if row.rejection is not None and _valid(amount):
            problems.append(f"{row.update_id}: amount {amount} rejected ({row.rejection})")
    applied = sorted((row for row in rows if row.reply_json is not None), key=lambda row: row.consumed_seq or 0)
    total = 0
    for n, row in enumerate(applied, 1):
        amount = (payload(row.payload_json) or {}).get("amount")
        if not _valid(amount):
            problems.append(f"{row.update_id}: amount {amount!r} applied")
            continue
        total += amount
        if payload(row.reply_json) != {"total": total, "n": n}:
            problems.append(f"{row.update_id}: replied {row.reply_json}; applied {n}th, the total was {total}")
    result = run.result or {}
    if run.status == "completed":
        names = [row.update_id for row in applied]
        if result.get("applied") != names or result.get("total") != total:
            problems.append(f"result {result}; the database replied to {names}, total {total}")
        unread = [row for row in rows if row.consumed_seq is None]
        if unread and result.get("status") != "idle":
            problems.append(f"{[row.update_id for row in unread]} unread, yet the counter ended {result.get('status')}")
        timed_out = _timed_out_at(entries)
        for row in unread:  # the timer takes an update waiting in the inbox instead (timers.py, _end_waits)
            if timed_out is not None and row.created_at < timed_out:
                problems.append(f"{row.update_id}: sent at {row.created_at}, unread: the wait timed out at {timed_out}")
        figures["counter updates unread"] += len(unread)
    for record in plan.updates:
        problems += _caller(record, by_id.get(record["update_id"]), figures)
    if problems:
        out.append({"ref": plan.ref, "status": run.status, "problems": problems})


def _timed_out_at(entries: list[Any]) -> Any:
    """When the counter's last update wait timed out (the timer's statement), or None.

    An update sent before that was in the inbox when the timer fired: ``send`` holds the run's
    row (shared) from before its insert to its commit, the timer locks the row before it
    looks, so an update row created before the timer's write was committed before its look.
    """
    for entry in reversed(entries):
        if entry.kind == "update" and entry.status == "completed" and entry.result_json is None:
            return entry.finished_at
    return None


def _caller(record: dict[str, Any], row: Any, figures: Counter[str]) -> list[str]:
    """What one update's caller heard, call by call, against the update's row."""
    problems = []
    calls = record["calls"]
    first = [call for call in calls if not call["resend"]]
    outcomes = [call["outcome"] for call in first]
    held = None if row is None or row.reply_json is None else payload(row.reply_json)
    for call in calls:
        if call["outcome"] == "replied" and (row is None or call["reply"] != held):
            problems.append(f"{record['update_id']}: the caller got {call['reply']}, the database holds {held}")
        if call["outcome"] == "rejected" and (row is None or row.rejection is None):
            problems.append(f"{record['update_id']}: the caller was rejected, the run did not reject it")
        if call["outcome"] == "refused_finished" and row is not None and row.consumed_seq is not None:
            problems.append(f"{record['update_id']}: the caller heard RunFinished for an update the run took")
    figures["counter updates replied"] += "replied" in outcomes
    figures["counter updates rejected"] += "rejected" in outcomes
    figures["counter updates refused (run finished)"] += outcomes[-1:] == ["refused_finished"]
    figures["counter updates given up"] += any(outcome == "timeout" or "error" in outcome for outcome in outcomes[-1:])
    figures["counter updates retried after a timeout"] += "timeout" in outcomes[:-1]
    figures["counter updates retried after an error"] += any("error" in outcome for outcome in outcomes[:-1])
    figures["counter update ids sent again after their reply"] += any(
        call["resend"] and call["outcome"] == "replied" for call in calls
    )
    return problems
