"""The composed workload's invariants (chaos/composed.py), stated from the docs.

- ``composed_signals`` (signals.md, parallel.md): every signal committed to a composed run
  is taken by exactly one wait that returned it, or left unread in its inbox; waits of a
  name take them oldest first; a loop that took its "exit" took every "submit" sent
  before it (the lower index of a group wins); no loop idled out while a signal committed
  before its timer came due sat unread (chaos/composed_signals_checker.py).
- ``saga_ledger`` (cancellation.md): by the fake API's ledger, a saga is charged at most
  once and refunded iff it failed or was cancelled after charging, by one refund of that
  charge; a completed saga's result names its charge.
- ``saga_cleanup`` (cancellation.md): the cleanup in ``finally`` ran exactly once in every
  finished saga, cancelled or not: one completed cleanup entry, its body committed once.
- ``children_orphaned`` (child-workflows.md, lifecycle's ``finish``): no live child of a
  finished parent; a child asked to cancel (a loser, a child of a cancelled parent) ended
  cancelled; none ran on for long after its parent ended without being asked to cancel;
  each subscription generation started its own child.
- ``composed_outcomes``: each run ended as its plan and the driver's cancels say.
- ``stuck_runs``: every composed run finished; one that did not is named with what it waits for.
- ``loop_state``, ``saga_patch``, ``deadlines``, ``counter_updates``: ``set_state``, ``patched``,
  run deadlines and updates with replies (chaos/composed_requests_checker.py).

Timers of composed runs are held to the shared ``timers`` invariant (chaos/checker.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from . import composed_requests_checker as request_checks
from .composed import ComposedPlan
from .composed_signals_checker import check_signals, payload

FINISHED = ("completed", "failed", "cancelled")
#: ``finished_at`` is its transaction's start (PostgreSQL's ``now()``): a child whose last transaction began
#: after its parent's did can still commit first, and so end completed, unasked, a moment "after" its parent.
ORPHAN_SLACK = 5.0
DESCRIPTIONS = {
    "composed_signals": "every signal to a composed run taken once, by a wait that returned it, or left unread",
    "saga_ledger": "each saga charged at most once, refunded iff it failed or was cancelled after charging",
    "saga_cleanup": "every finished saga (cancelled ones included) ran its finally cleanup exactly once",
    "children_orphaned": "no live child of a finished parent; a child asked to cancel ended cancelled",
    "composed_outcomes": "each composed run ended as its plan and its cancels say",
    "stuck_runs": "every composed run finished (one that did not is named with what it waits for)",
    **request_checks.DESCRIPTIONS,
}


def check_composed(
    plans: list[ComposedPlan],
    runs: dict[str, Any],
    history: dict[Any, list[Any]],
    signals: list[Any],
    receipts: dict[str, Any],
    applications: list[dict[str, Any]],
    cleanup_rows: list[Any],
    child_runs: list[Any],
    update_rows: list[Any] | None = None,
    waits_for: Callable[[Any, dict[Any, list[Any]]], list[str]] | None = None,
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Offenders per invariant, and the figures of the composed workload.

    Pure: the caller loads the rows (``load_rows``); ``waits_for`` names what a live run waits for.
    """
    waits_for = waits_for or _waits_for
    found: dict[str, list[Any]] = {name: [] for name in DESCRIPTIONS}
    committed = [plan for plan in plans if plan.outcome == "committed"]
    by_run: dict[Any, list[Any]] = defaultdict(list)
    for sig in signals:
        by_run[sig.run_id].append(sig)
    receipts_of: dict[str, list[Any]] = defaultdict(list)
    for receipt in receipts.values():
        receipts_of[receipt.ref].append(receipt)
    cleanups: dict[str, list[Any]] = defaultdict(list)
    for row in cleanup_rows:
        cleanups[row.ref].append(row)
    applied: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for application in applications:
        applied[(application["order_id"], application["kind"])].append(application)
    children: dict[Any, list[Any]] = defaultdict(list)
    for child in child_runs:
        children[child.parent_id].append(child)
    updates: dict[Any, list[Any]] = defaultdict(list)
    for row in update_rows or ():
        updates[row.run_id].append(row)

    figures: Counter[str] = Counter()
    #: Seconds each child no one asked to cancel finished after its parent (a float, so not in the Counter).
    after_parent: list[float] = []
    for plan in committed:
        run = runs.get(plan.ref)
        figures[f"{plan.kind} runs"] += 1
        if run is None:
            found["stuck_runs"].append({"ref": plan.ref, "why": "no run for a committed start"})
            continue
        figures[f"{plan.kind} {run.status}"] += 1
        if run.status not in FINISHED:
            found["stuck_runs"].append({"ref": plan.ref, "status": run.status, "waits_for": waits_for(run, history)})
            continue
        entries = history.get(run.pk, [])
        check_signals(plan, run, entries, by_run[run.pk], receipts_of[plan.ref], found["composed_signals"], figures)
        if plan.kind == "saga":
            _saga(plan, run, entries, cleanups[plan.ref], applied, found, figures)
        elif plan.kind == "family":
            _family(plan, run, children[run.pk], found, figures, after_parent)
        elif plan.kind == "subscription":
            _subscription(plan, run, children[run.pk], found, figures, after_parent)
        elif plan.kind == "loop":
            figures[f"loops {(run.result or {}).get('status')}"] += 1
        elif plan.kind == "counter" and run.status != "completed":  # nothing cancels it: it idles out
            found["composed_outcomes"].append({"ref": plan.ref, "expected": "completed", "got": run.status})
        request_checks.check_loop_state(plan, run, entries, found["loop_state"], figures)
        request_checks.check_patch(plan, run, entries, found["saga_patch"], figures)
        request_checks.check_deadline(plan, run, entries, found["deadlines"], figures)
        request_checks.check_updates(plan, run, entries, updates[run.pk], found["counter_updates"], figures)
    figures["signals_committed"] = sum(
        1 for plan in committed for record in plan.signals if record["nonce"] in receipts
    )
    figures["signals_refused"] = sum(1 for plan in plans for s in plan.signals if s["outcome"] == "refused_finished")
    figures["signals_in_start"] = sum(1 for plan in committed for s in plan.signals if s["early"])
    figures["cancels_committed"] = sum(1 for plan in committed if plan.cancel_committed)
    figures["cancels_refused"] = sum(plan.cancels.count("refused_finished") for plan in committed)
    shown: dict[str, float] = dict(figures)
    if after_parent:  # the longest; 0 as the Counter's own default was, when none outlived its parent
        shown["children unasked, finished after the parent (max s)"] = max([0, *after_parent])
    return found, dict(sorted(shown.items()))


def load_rows() -> tuple[list[Any], list[Any], list[Any]]:
    """The cleanup log, every child run and every update, for ``check_composed``."""
    from durable_django.models import Update, WorkflowRun

    from .shop.models import CleanupLog

    cleanups = list(CleanupLog.objects.order_by("id"))
    children = list(WorkflowRun.objects.filter(parent__isnull=False).order_by("created_at"))
    return cleanups, children, list(Update.objects.order_by("id"))


def _saga(
    plan: ComposedPlan,
    run: Any,
    entries: list[Any],
    rows: list[Any],
    applied: dict[tuple[int, str], list[dict[str, Any]]],
    found: dict[str, list[Any]],
    figures: Counter[str],
) -> None:
    assert plan.order_id is not None
    charges = applied.get((plan.order_id, "charge"), [])
    refunds = applied.get((plan.order_id, "refund"), [])
    figures["saga charged"] += bool(charges)
    figures["saga refunded"] += bool(refunds)
    ledger = found["saga_ledger"]
    ids = {"charges": [c["effect_id"] for c in charges], "refunds": [r["effect_id"] for r in refunds]}
    if len(charges) > 1 or len(refunds) > 1:
        ledger.append({"ref": plan.ref, "why": "charged or refunded more than once", **ids})
    if run.status == "completed":
        if len(charges) != 1 or refunds:
            ledger.append({"ref": plan.ref, "why": "completed saga: one charge and no refund expected", **ids})
        elif (run.result or {}).get("charge") != charges[0]["effect_id"]:
            ledger.append({"ref": plan.ref, "why": "completed saga's result names another charge", **ids})
    elif len(refunds) != len(charges) or [r["target"] for r in refunds] != [c["effect_id"] for c in charges]:
        ledger.append({"ref": plan.ref, "status": run.status, "why": "refunded iff charged, of that charge", **ids})

    # The cleanup: exactly one completed cleanup entry, each entry's body committed at most once (once if completed).
    cleanup = [entry for entry in entries if entry.kind == "step" and entry.name.endswith(".cleanup")]
    keys = Counter(row.key for row in rows)
    entry_keys = {f"{run.pk.hex}-{entry.seq}": entry for entry in cleanup}
    problems = []
    if sum(1 for entry in cleanup if entry.status == "completed") != 1:
        problems.append(f"cleanup entries {[(entry.seq, entry.status) for entry in cleanup]}")
    for key, n in keys.items():
        entry = entry_keys.get(key)
        if n > 1 or entry is None:
            problems.append(f"cleanup body committed {n} times for {key} (entry {entry and entry.status})")
    for key, entry in entry_keys.items():
        if entry.status == "completed" and keys[key] != 1:
            problems.append(f"completed cleanup entry {entry.seq} committed {keys[key]} times")
    if problems:
        found["saga_cleanup"].append({"ref": plan.ref, "status": run.status, "problems": problems})
    figures["saga cleanups"] += len(rows)
    for entry in entries:
        if entry.kind == "step" and entry.status == "cancelled" and (entry.result_json or entry.error_json):
            figures["saga steps cancelled while an attempt ran"] += 1
        if entry.kind == "step" and entry.result_json and '"stopped-' in entry.result_json:
            figures["saga reservations stopped early by a heartbeat"] += 1
    figures["saga cleanups asked again after a cancel"] += max(0, len(cleanup) - 1)

    # The outcome.
    amount, fail = plan.args[2], plan.args[4]
    if plan.cancel_committed or run.cancel_requested_at is not None:
        expected = "cancelled"
    elif amount % 100 == 1 or fail == "fail":
        expected = "failed"
    else:
        expected = "completed"
    if run.status != expected:
        found["composed_outcomes"].append(
            {"ref": plan.ref, "expected": expected, "got": run.status, "cancels": plan.cancels, "fail": fail}
        )


def _arg(run: Any, index: int) -> Any:
    args = (payload(run.input_json) or {}).get("args") or []
    return args[index] if index < len(args) else None


def _outlived(parent: Any, kids: list[Any], found: dict[str, list[Any]], after_parent: list[float]) -> None:
    for child in kids:
        if child.status not in FINISHED:
            found["children_orphaned"].append(
                {"parent": parent.workflow_id, "child": child.workflow_id, "why": f"live child ({child.status})"}
            )
            continue
        if child.cancel_requested_at is not None and child.status != "cancelled":
            found["children_orphaned"].append(
                {"parent": parent.workflow_id, "child": child.workflow_id, "why": f"cancelled, yet {child.status}"}
            )
        outlived = (child.finished_at - parent.finished_at).total_seconds() if parent.finished_at else 0.0
        if child.cancel_requested_at is None:
            after_parent.append(round(max(0.0, outlived), 3))
        if outlived > ORPHAN_SLACK and child.cancel_requested_at is None:
            found["children_orphaned"].append(
                {
                    "parent": parent.workflow_id,
                    "child": child.workflow_id,
                    "why": f"ran on {outlived:.1f} s after its parent ended {parent.status}, never cancelled",
                }
            )


def _expected_by_cancel(plan: ComposedPlan, run: Any) -> str:
    return "cancelled" if plan.cancel_committed or run.cancel_requested_at is not None else "completed"


def _family(
    plan: ComposedPlan,
    run: Any,
    kids: list[Any],
    found: dict[str, list[Any]],
    figures: Counter[str],
    after_parent: list[float],
) -> None:
    _outlived(run, kids, found, after_parent)
    figures["family children"] += len(kids)
    mode, seconds = plan.args[1], plan.args[2]
    expected = _expected_by_cancel(plan, run)
    problems = []
    if run.status != expected:
        problems.append(f"ended {run.status}, expected {expected}")
    if len(kids) > len(seconds):
        problems.append(f"{len(kids)} children for {len(seconds)} requests")
    if run.status == "completed":
        result = run.result or {}
        if mode == "all" and (
            result.get("results") != list(range(len(seconds))) or any(kid.status != "completed" for kid in kids)
        ):
            problems.append(f"all_of result {result}, children {[kid.status for kid in kids]}")
        if mode == "any":
            winner = result.get("winner")
            won = [kid for kid in kids if _arg(kid, 1) == winner]
            if result.get("value") != winner or not won or won[0].status != "completed":
                problems.append(f"any_of result {result}, children {[kid.status for kid in kids]}")
    if problems:
        found["composed_outcomes"].append({"ref": plan.ref, "mode": mode, "problems": problems})


def _subscription(
    plan: ComposedPlan,
    run: Any,
    kids: list[Any],
    found: dict[str, list[Any]],
    figures: Counter[str],
    after_parent: list[float],
) -> None:
    _outlived(run, kids, found, after_parent)
    figures["subscription children"] += len(kids)
    figures["subscription generations"] += run.generation + 1
    cycles = plan.args[1]
    expected = _expected_by_cancel(plan, run)
    problems = []
    if run.status != expected:
        problems.append(f"ended {run.status}, expected {expected}")
    cycles_started = sorted(_arg(kid, 1) for kid in kids)
    if cycles_started != list(range(len(kids))):
        problems.append(f"children for cycles {cycles_started}: each generation must start its own")
    if len(kids) != run.generation + 1 and run.status == "completed":
        problems.append(f"{len(kids)} children over {run.generation + 1} generations")
    if run.status == "completed":
        result = run.result or {}
        billed = result.get("billed")
        if billed != list(range(len(kids))):
            problems.append(f"billed {billed} from {len(kids)} children")
        if result.get("status") == "done" and len(billed or []) != cycles:
            problems.append(f"done after {billed}, {cycles} cycles planned")
    if problems:
        found["children_orphaned" if "own" in " ".join(problems) else "composed_outcomes"].append(
            {"ref": plan.ref, "generation": run.generation, "problems": problems}
        )


def _waits_for(run: Any, history: dict[Any, list[Any]]) -> list[str]:
    """What a live run waits for, in words the report can show."""
    from durable_django.models import Signal, WorkflowRun

    reasons = []
    unread = Counter(Signal.objects.filter(run_id=run.pk, consumed_seq__isnull=True).values_list("name", flat=True))
    for entry in history.get(run.pk, []):
        if entry.status != "scheduled":
            continue
        if entry.kind == "signal":
            there = unread.get(entry.name, 0)
            reasons.append(
                f"#{entry.seq} signal {entry.name!r}: " + (f"STUCK, {there} in the inbox" if there else "none sent yet")
            )
        elif entry.fire_at is not None:
            reasons.append(f"#{entry.seq} {entry.kind} due {entry.fire_at.isoformat()}")
        elif entry.child_id is not None:
            child = WorkflowRun.objects.filter(pk=entry.child_id).values_list("workflow_id", "status").first()
            reasons.append(f"#{entry.seq} child {child}")
        else:
            reasons.append(f"#{entry.seq} {entry.kind} {entry.name} (attempts {entry.attempts})")
    return reasons or [f"no pending request (status {run.status}, cancel_requested {run.cancel_requested})"]
