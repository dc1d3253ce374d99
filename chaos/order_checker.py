"""The order workload's invariants, order by order: its run, its row and the ledger agree; each signal was taken once.

``chaos/checker.py`` gathers them with the other invariants.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from .workload import EXPECTED, OrderPlan

FINISHED = ("completed", "failed", "cancelled")
#: A signal wait's result when its timeout fired: no result at all (the library stores none, so a
#: timeout is told from a signal of ``null``); ``"null"`` as older versions stored it. The harness's
#: signals always carry a payload, so neither is ever a signal taken.
TIMED_OUT = (None, "null")


def expected_outcome(plan: OrderPlan) -> tuple[str, str | None, str] | None:
    """What the run must end as, if the harness's part of the plan happened as planned."""
    if plan.path == "cancel" and plan.cancel != "committed":
        return None
    if plan.path in ("ship", "ship-early", "ship-twice", "cancel-signal"):
        first = plan.signals[0] if plan.signals else None
        if first is None or first["outcome"] != "committed":
            return None
    return EXPECTED[plan.path]


def order_problems(run: Any, order: Any, applied: dict[Any, list[Any]], declined: dict[int, Any]) -> list[str]:
    problems = []
    result = run.result or {}
    charges = applied.get((order.pk, "charge"), [])
    refunds = applied.get((order.pk, "refund"), [])
    emails = applied.get((order.pk, "email"), [])
    writes = (order.paid_writes, order.declined_writes, order.shipped_writes, order.refunded_writes)
    if any(n > 1 for n in writes):
        problems.append(f"an atomic step wrote twice: paid/declined/shipped/refunded writes {writes}")
    if len(emails) > 1:
        problems.append(f"{len(emails)} confirmation emails")
    status = result.get("status") if run.status == "completed" else run.status
    if status == "declined":
        if order.status != "declined" or order.declined_writes != 1 or order.paid_writes:
            problems.append(f"declined run, order {order.status} (writes {writes})")
        if charges or order.pk not in declined:
            problems.append("declined run, but the ledger shows a charge or no decline")
        return problems
    if status not in ("shipped", "refunded", "cancelled"):
        return [*problems, f"run ended {run.status} {result}"]
    charge_ids = [row["effect_id"] for row in charges]
    if order.paid_writes != 1 or charge_ids != [order.charge_id]:
        problems.append(f"order charge {order.charge_id!r} (paid writes {order.paid_writes}), ledger {charge_ids}")
    if status == "shipped":
        if order.status != "shipped" or order.shipped_writes != 1 or order.refunded_writes:
            problems.append(f"shipped run, order {order.status} (writes {writes})")
        if result.get("charge") != order.charge_id or result.get("signal") != order.shipped_by:
            problems.append(f"shipped run result {result} disagrees with the order")
        if refunds:
            problems.append(f"shipped order refunded at the API: {[row['effect_id'] for row in refunds]}")
        return problems
    reason = "cancelled" if status == "cancelled" else result.get("reason")
    if (
        order.status != "refunded"
        or order.refunded_writes != 1
        or order.shipped_writes
        or order.refund_reason != reason
    ):
        problems.append(f"{status} run ({reason}), order {order.status} {order.refund_reason!r} (writes {writes})")
    refund_ids = [row["effect_id"] for row in refunds]
    if refund_ids != [order.refund_id] or [row["target"] for row in refunds] != [order.charge_id]:
        problems.append(f"order refund {order.refund_id!r} of {order.charge_id!r}, ledger {refunds}")
    if status == "refunded" and (result.get("refund") != order.refund_id or result.get("charge") != order.charge_id):
        problems.append(f"refunded run result {result} disagrees with the order")
    return problems


def signal_problems(
    plans: list[OrderPlan],
    runs: dict[str, Any],
    history: dict[Any, list[Any]],
    signals: list[Any],
    receipts: dict[str, Any],
    by_nonce: dict[str, Any],
) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    run_by_pk = {run.pk: run for run in runs.values()}
    # Each committed signal (a receipt) is one Signal row of its run; each Signal row has a receipt.
    for nonce, receipt in receipts.items():
        sig = by_nonce.get(nonce)
        if sig is None:
            problems.append({"nonce": nonce, "ref": receipt.ref, "why": "committed signal has no inbox row"})
        elif run_by_pk.get(sig.run_id) is None or run_by_pk[sig.run_id].workflow_id != receipt.ref:
            problems.append({"nonce": nonce, "ref": receipt.ref, "why": "signal stored for another run"})
    for nonce in by_nonce:
        if nonce not in receipts:
            problems.append({"nonce": nonce, "why": "a signal nobody sent (or whose send rolled back)"})
    # Each taken signal was taken by a wait of its run that returned its payload; each wait took at most one.
    taken_by: dict[tuple[Any, int], list[Any]] = defaultdict(list)
    for sig in signals:
        if sig.consumed_seq is not None:
            taken_by[(sig.run_id, sig.consumed_seq)].append(sig)
    for entries in history.values():
        for entry in entries:
            if entry.kind != "signal":
                continue
            took = taken_by.pop((entry.run_id, entry.seq), [])
            got = json.loads(entry.result_json) if entry.status == "completed" and entry.result_json else None
            if got is None:
                if took:
                    why = "signal taken by a wait that returned nothing"
                    payloads = [json.loads(sig.payload_json) for sig in took]
                    problems.append({"run": str(entry.run_id), "seq": entry.seq, "why": why, "payloads": payloads})
                continue
            nonces = [json.loads(sig.payload_json).get("nonce") for sig in took]
            if nonces != [got.get("nonce")]:
                problems.append({"run": str(entry.run_id), "seq": entry.seq, "returned": got, "taken": nonces})
    for (run_id, seq), took in taken_by.items():
        problems.append({"run": str(run_id), "seq": seq, "why": "signal marked taken by no wait", "n": len(took)})
    # An unread signal belongs to a finished run; and a wait that began after a signal committed must take it.
    wait_of = {
        run_id: next((entry for entry in entries if entry.kind == "signal"), None)
        for run_id, entries in history.items()
    }
    for sig in signals:
        if sig.consumed_seq is not None:
            continue
        run = run_by_pk.get(sig.run_id)
        if run is None or run.status not in FINISHED:
            problems.append({"signal": sig.pk, "why": "unread signal of a live run"})
            continue
        receipt = receipts.get(json.loads(sig.payload_json).get("nonce"))
        wait = wait_of.get(sig.run_id)
        if (
            receipt is not None
            and receipt.committed_at is not None
            and wait is not None
            and wait.result_json in TIMED_OUT
            and wait.status == "completed"
            and receipt.committed_at < wait.scheduled_at
        ):
            problems.append(
                {
                    "ref": run.workflow_id,
                    "nonce": receipt.nonce,
                    "why": "signal committed before the wait began, yet the wait timed out",
                }
            )
    return problems
