"""The invariant checker: after the runs drained, compare the app database, the ledger and the plans.

Each invariant gives a count of violations and the first offenders; all must be zero.
The ledger is the fake API's own SQLite file: what really happened outside.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .composed import ComposedPlan
from .workload import EXPECTED, OrderPlan

WORKFLOW = "chaos.shop.workflows.place_order"
FINISHED = ("completed", "failed", "cancelled")
SHOWN = 20
#: A signal wait's result when its timeout fired: no result at all (the library stores none, so a
#: timeout is told from a signal of ``null``); ``"null"`` as older versions stored it. The harness's
#: signals always carry a payload, so neither is ever a signal taken.
TIMED_OUT = (None, "null")


@dataclass
class Invariant:
    name: str
    description: str
    offenders: list[Any] = field(default_factory=list)

    def fail(self, offender: Any) -> None:
        self.offenders.append(offender)

    @property
    def count(self) -> int:
        return len(self.offenders)

    def as_dict(self) -> dict[str, Any]:
        return {"description": self.description, "violations": self.count, "offenders": self.offenders[:SHOWN]}


@dataclass
class Ledger:
    effects: list[dict[str, Any]]
    applications: list[dict[str, Any]]
    requests: Counter[tuple[str, str]]
    request_orders: set[int]

    @classmethod
    def load(cls, path: Path) -> Ledger:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            effects = [dict(row) for row in db.execute("SELECT * FROM effects")]
            applications = [dict(row) for row in db.execute("SELECT * FROM applications")]
            requests = Counter(
                {(kind, outcome): n for kind, outcome, n in db.execute(
                    "SELECT kind, outcome, count(*) FROM requests GROUP BY kind, outcome"
                )}
            )  # fmt: skip
            orders = {row[0] for row in db.execute("SELECT DISTINCT order_id FROM requests")}
        return cls(effects, applications, requests, orders)

    def outcome(self, name: str) -> int:
        return sum(n for (_, outcome), n in self.requests.items() if outcome == name)


def _percentiles(values: Iterable[float]) -> dict[str, float] | None:
    data = sorted(values)
    if not data:
        return None

    def pick(q: float) -> float:
        return data[min(len(data) - 1, int(q * len(data)))]

    return {
        "n": len(data),
        "p50": round(pick(0.5), 3),
        "p99": round(pick(0.99), 3),
        "max": round(data[-1], 3),
        "mean": round(statistics.fmean(data), 3),
    }


def check(
    plans: list[OrderPlan],
    ledger_path: Path,
    last_fault_wall: float,
    liveness_bound: float,
    composed: list[ComposedPlan] | None = None,
) -> dict[str, Any]:
    """Every invariant, with counts and offenders, plus the figures the report shows.

    The order invariants hold the orders; the composed workload's runs are held to
    ``timers``, ``stale_writes_accepted``, ``history_integrity``, ``work_items_left`` and
    ``liveness`` as well, and to their own invariants (chaos/composed_checker.py).
    """
    from durable_django.models import HistoryEntry, Signal, WorkflowRun, WorkItem

    from .composed_checker import DESCRIPTIONS, check_composed, load_rows
    from .shop.models import Anomaly, Order, SignalReceipt

    inv = {
        name: Invariant(name, description)
        for name, description in (
            ("lost_runs", "every committed start reaches a final state"),
            ("phantom_runs", "rolled-back starts never ran and were never charged; no run or charge without a start"),
            ("duplicate_effects", "at most one applied effect per idempotency key, per order and kind"),
            ("orders_match_runs", "order rows, run results and the ledger agree; atomic steps wrote once"),
            ("outcome_as_planned", "each run ended as its plan's signals and cancels say it must"),
            ("failed_runs", "no run failed (every fault here is recoverable); a blocked run counts as lost"),
            ("timers", "no timer fired before its time (database clock), none fired twice"),
            ("signals", "every committed signal is taken once by its wait, or waits unread in a finished run"),
            ("stale_writes_accepted", "no committed write changed a finished history entry, run or taken signal"),
            ("history_integrity", "each finished run's history is contiguous and settled"),
            ("work_items_left", "no work item and no live run is left after draining"),
            ("liveness", f"every run finished within {liveness_bound:g} s after the last fault"),
            *(DESCRIPTIONS.items() if composed is not None else ()),
        )
    }
    ledger = Ledger.load(ledger_path)
    runs = {run.workflow_id: run for run in WorkflowRun.objects.all()}
    orders = {order.ref: order for order in Order.objects.all()}
    receipts = {receipt.nonce: receipt for receipt in SignalReceipt.objects.all()}
    history: dict[Any, list[HistoryEntry]] = defaultdict(list)
    for entry in HistoryEntry.objects.order_by("run_id", "seq"):
        history[entry.run_id].append(entry)
    signals = list(Signal.objects.all())

    committed = [plan for plan in plans if plan.outcome == "committed"]
    committed_refs = {plan.ref for plan in committed}
    committed_order_ids = {plan.order_id for plan in committed}
    committed_order_ids |= {plan.order_id for plan in composed or () if plan.outcome == "committed" and plan.order_id}
    # The order invariants' signals: those of order runs (the composed runs' are checked by their own).
    order_runs = {run.pk for run in runs.values() if run.workflow_name == WORKFLOW}
    composed_receipts = {nonce: r for nonce, r in receipts.items() if r.ref not in committed_refs}
    receipts = {nonce: r for nonce, r in receipts.items() if r.ref in committed_refs}
    all_signals, signals = signals, [sig for sig in signals if sig.run_id in order_runs]

    # No lost run.
    for plan in committed:
        run = runs.get(plan.ref)
        if run is None:
            inv["lost_runs"].fail({"ref": plan.ref, "why": "no run for a committed start"})
        elif run.status not in FINISHED:
            inv["lost_runs"].fail({"ref": plan.ref, "status": run.status, "next_seq": run.next_seq})

    # No phantom run.
    for plan in plans:
        if plan.outcome != "rolled_back":
            continue
        if plan.ref in runs or plan.ref in orders:
            inv["phantom_runs"].fail({"ref": plan.ref, "why": "a rolled-back start left a run or an order"})
        if plan.order_id in ledger.request_orders:
            inv["phantom_runs"].fail({"ref": plan.ref, "why": "the API saw requests for a rolled-back order"})
    for ref, run in runs.items():
        if run.workflow_name == WORKFLOW and ref not in committed_refs:
            inv["phantom_runs"].fail({"ref": ref, "why": "a run no committed start asked for"})
    for order_id in ledger.request_orders - committed_order_ids:
        inv["phantom_runs"].fail({"order_id": order_id, "why": "API requests for an order no committed start made"})

    # No duplicate effect.
    per_key = Counter((a["kind"], a["idempotency_key"]) for a in ledger.applications)
    for (kind, key), n in per_key.items():
        if n > 1:
            inv["duplicate_effects"].fail({"kind": kind, "key": key, "applied": n})
    applied: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for application in ledger.applications:
        applied[(application["order_id"], application["kind"])].append(application)
    for (order_id, kind), rows in applied.items():
        if len(rows) > 1:
            inv["duplicate_effects"].fail(
                {"order_id": order_id, "kind": kind, "keys": [row["idempotency_key"] for row in rows]}
            )
    mismatches = ledger.outcome("mismatch")
    if mismatches:
        inv["duplicate_effects"].fail({"why": "idempotency key reused with other parameters", "requests": mismatches})
    declined = {e["order_id"]: e for e in ledger.effects if e["kind"] == "charge" and e["status"] == "declined"}

    # Orders, runs, ledger agree; outcome as planned; no failures.
    by_nonce_signal: dict[str, Signal] = {}
    for sig in signals:
        nonce = json.loads(sig.payload_json).get("nonce")
        by_nonce_signal[nonce] = sig
    for plan in committed:
        run, order = runs.get(plan.ref), orders.get(plan.ref)
        if run is None or order is None or run.status not in FINISHED:
            continue
        problems = _order_problems(run, order, applied, declined)
        if problems:
            inv["orders_match_runs"].fail({"ref": plan.ref, "status": run.status, "problems": problems})
        if run.status == "failed":
            inv["failed_runs"].fail({"ref": plan.ref, "status": run.status, "error": (run.error or {}).get("message")})
        expected = _expected(plan)
        if expected is not None:
            result = run.result or {}
            got = (run.status, result.get("status"), order.refund_reason)
            if got != expected:
                inv["outcome_as_planned"].fail({"ref": plan.ref, "path": plan.path, "expected": expected, "got": got})

    # Timers: never early; a fired timer's entry is final (the triggers catch a second firing).
    lateness: list[float] = []
    for entries in history.values():
        for entry in entries:
            timed_out = entry.kind == "signal" and entry.status == "completed" and entry.result_json in TIMED_OUT
            fired = (entry.kind == "sleep" and entry.status == "completed") or timed_out
            if not fired or entry.fire_at is None:
                continue
            if entry.finished_at is None or entry.finished_at < entry.fire_at:
                inv["timers"].fail(
                    {"run": str(entry.run_id), "seq": entry.seq, "fire_at": entry.fire_at, "at": entry.finished_at}
                )
            else:
                lateness.append((entry.finished_at - entry.fire_at).total_seconds())

    # Signals.
    order_history = {run_id: entries for run_id, entries in history.items() if run_id in order_runs}
    signal_problems = _signal_problems(plans, runs, order_history, signals, receipts, by_nonce_signal)
    for problem in signal_problems:
        inv["signals"].fail(problem)

    # The composed workload.
    composed_figures: dict[str, Any] = {}
    if composed is not None:
        offenders, composed_figures = check_composed(
            composed, runs, history, all_signals, composed_receipts, ledger.applications, *load_rows()
        )
        for name, items in offenders.items():
            for item in items:
                inv[name].fail(item)

    # Stale writes: the triggers' records.
    for anomaly in Anomaly.objects.order_by("id"):
        target = "signals" if anomaly.kind == "signal_retaken" else "stale_writes_accepted"
        inv[target].fail({"kind": anomaly.kind, "row": anomaly.row, "detail": json.loads(anomaly.detail)})

    # History integrity.
    for ref, run in runs.items():
        if run.status not in FINISHED:
            continue
        entries = history.get(run.pk, [])
        seqs = [entry.seq for entry in entries]
        if seqs != list(range(run.next_seq)):
            inv["history_integrity"].fail({"ref": ref, "seqs": seqs, "next_seq": run.next_seq})
        unsettled = [entry.seq for entry in entries if entry.status == "scheduled"]
        if unsettled:
            inv["history_integrity"].fail({"ref": ref, "unsettled": unsettled})

    # Drained.
    for item in WorkItem.objects.all()[:SHOWN]:
        inv["work_items_left"].fail({"item": item.pk, "kind": item.kind, "run": str(item.run_id), "seq": item.seq})
    left = WorkItem.objects.count()
    for _ in range(max(0, left - SHOWN)):
        inv["work_items_left"].fail("...")
    for ref, run in runs.items():
        if run.status not in FINISHED:
            inv["work_items_left"].fail({"ref": ref, "status": run.status, "why": "live run"})

    # Liveness.
    last_fault = datetime.fromtimestamp(last_fault_wall, UTC)
    finished_at = [run.finished_at for run in runs.values() if run.finished_at is not None]
    last_finish = max(finished_at) if finished_at else None
    after_last_fault = (last_finish - last_fault).total_seconds() if last_finish else None
    if after_last_fault is not None and after_last_fault > liveness_bound:
        late = sorted(
            (run for run in runs.values() if run.finished_at and (run.finished_at - last_fault).total_seconds() > 0),
            key=lambda run: run.finished_at or last_fault,  # every one here has finished
        )[-SHOWN:]
        inv["liveness"].fail(
            {"seconds_after_last_fault": round(after_last_fault, 2), "last": [run.workflow_id for run in late]}
        )
    if any(run.status not in FINISHED for run in runs.values()):
        inv["liveness"].fail({"why": "runs still live when the harness stopped waiting"})

    # Figures.
    statuses = Counter(run.status for run in runs.values())
    results = Counter((run.result or {}).get("status", run.status) for run in runs.values())
    durations = [
        (run.finished_at - run.created_at).total_seconds() for run in runs.values() if run.finished_at is not None
    ]
    steps = [entry for entries in history.values() for entry in entries if entry.kind == "step"]
    figures = {
        "runs": len(runs),
        "run_status": dict(statuses),
        "run_results": dict(results),
        "run_seconds": _percentiles(durations),
        "timer_lateness_seconds": _percentiles(lateness),
        "steps": len(steps),
        "step_attempts": sum(entry.attempts for entry in steps),
        "steps_retried": sum(1 for entry in steps if entry.attempts > 1),
        "signals_sent": len(signals),
        "signals_unread_in_finished_runs": sum(1 for sig in signals if sig.consumed_seq is None),
        "ledger": {
            "charges_applied": sum(1 for a in ledger.applications if a["kind"] == "charge"),
            "refunds_applied": sum(1 for a in ledger.applications if a["kind"] == "refund"),
            "emails_sent": sum(1 for a in ledger.applications if a["kind"] == "email"),
            "charges_declined": len(declined),
            "requests": {f"{kind} {outcome}": n for (kind, outcome), n in sorted(ledger.requests.items())},
            "keys_repeated": sum(1 for e in ledger.effects if e["requests"] > 1),
        },
        "api_applied_then_dropped": ledger.outcome("applied_then_dropped"),
        "api_unavailable": ledger.outcome("unavailable"),
        "last_finish_after_last_fault_seconds": None if after_last_fault is None else round(after_last_fault, 2),
        "composed": composed_figures,
    }
    return {"invariants": {name: invariant.as_dict() for name, invariant in inv.items()}, "figures": figures}


def _expected(plan: OrderPlan) -> tuple[str, str | None, str] | None:
    """What the run must end as, if the harness's part of the plan happened as planned."""
    if plan.path == "cancel" and plan.cancel != "committed":
        return None
    if plan.path in ("ship", "ship-early", "ship-twice", "cancel-signal"):
        first = plan.signals[0] if plan.signals else None
        if first is None or first["outcome"] != "committed":
            return None
    return EXPECTED[plan.path]


def _order_problems(run: Any, order: Any, applied: dict[Any, list[Any]], declined: dict[int, Any]) -> list[str]:
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


def _signal_problems(
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
