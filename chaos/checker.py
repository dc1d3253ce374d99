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
from .order_checker import FINISHED, TIMED_OUT, expected_outcome, order_problems, signal_problems
from .workload import OrderPlan

WORKFLOW = "chaos.shop.workflows.place_order"
SHOWN = 20


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
        problems = order_problems(run, order, applied, declined)
        if problems:
            inv["orders_match_runs"].fail({"ref": plan.ref, "status": run.status, "problems": problems})
        if run.status == "failed":
            inv["failed_runs"].fail({"ref": plan.ref, "status": run.status, "error": (run.error or {}).get("message")})
        expected = expected_outcome(plan)
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
    for problem in signal_problems(plans, runs, order_history, signals, receipts, by_nonce_signal):
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
        if anomaly.kind.startswith("update_") and "counter_updates" in inv:  # chaos/shop/migrations/0004
            target = "counter_updates"
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
