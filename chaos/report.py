"""The verdict, the printed summary and the JSON report of a harness run.

PASSED needs every invariant at zero and every kind of fault the profile asks for to have
landed; a violated invariant is FAILED; faults that did not land make it INCONCLUSIVE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PASSED, FAILED, INCONCLUSIVE = "PASSED", "FAILED", "INCONCLUSIVE"
EXIT_CODES = {PASSED: 0, FAILED: 1, INCONCLUSIVE: 2}


def coverage(landed: dict[str, int], minimum: dict[str, int]) -> dict[str, dict[str, Any]]:
    return {
        name: {"landed": landed.get(name, 0), "minimum": need, "ok": landed.get(name, 0) >= need}
        for name, need in minimum.items()
    }


def verdict(report: dict[str, Any]) -> str:
    if any(item["violations"] for item in report["invariants"].values()):
        return FAILED
    if not all(item["ok"] for item in report["coverage"].values()) or report["harness_errors"]:
        return INCONCLUSIVE
    return PASSED


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def _composed_line(composed: dict[str, Any]) -> str:
    """The composed workload in one line: runs by kind and how they ended, signals and cancels."""
    kinds = ("loop", "saga", "family", "subscription", "ballot", "counter")
    ended = "; ".join(
        f"{composed.get(kind + ' runs', 0)} {kind} runs "
        + str(
            {
                status: composed[f"{kind} {status}"]
                for status in ("completed", "failed", "cancelled")
                if composed.get(f"{kind} {status}")
            }
        )
        for kind in kinds
    )
    return (
        f"  composed: {ended}\n"
        f"    loops exited {composed.get('loops exited', 0)}, idled out {composed.get('loops idle', 0)}; "
        f"signals {composed.get('signals_committed', 0)} committed "
        f"({composed.get('signals_in_start', 0)} in the start's transaction), "
        f"{composed.get('signals_taken', 0)} taken, {composed.get('signals_unread', 0)} unread, "
        f"{composed.get('signals_refused', 0)} refused; cancels {composed.get('cancels_committed', 0)} "
        f"({composed.get('cancels_refused', 0)} refused; "
        f"{composed.get('saga steps cancelled while an attempt ran', 0)} saga steps cancelled mid-attempt, "
        f"{composed.get('saga reservations stopped early by a heartbeat', 0)} stopped early by their heartbeat); "
        f"sagas charged {composed.get('saga charged', 0)}, "
        f"refunded {composed.get('saga refunded', 0)}; children {composed.get('family children', 0)} + "
        f"{composed.get('subscription children', 0)} over {composed.get('subscription generations', 0)} generations\n"
        f"    loops that published state {composed.get('loops published state', 0)}; "
        f"saga patch markers {composed.get('saga patch markers', 0)}; saga deadlines "
        f"{composed.get('saga deadlines exceeded', 0)} exceeded, {composed.get('saga deadlines met', 0)} met; "
        f"updates {composed.get('counter updates replied', 0)} replied, "
        f"{composed.get('counter updates rejected', 0)} rejected, "
        f"{composed.get('counter updates refused (run finished)', 0)} refused, "
        f"{composed.get('counter updates unread', 0)} unread, "
        f"{composed.get('counter updates given up', 0)} given up; retried after a timeout "
        f"{composed.get('counter updates retried after a timeout', 0)}, after an error "
        f"{composed.get('counter updates retried after an error', 0)}; ids sent again after their reply "
        f"{composed.get('counter update ids sent again after their reply', 0)}"
    )


def summary(report: dict[str, Any]) -> str:
    figures = report.get("figures", {})
    timing = report["seconds"]
    workload = report["workload"]
    faults = report["faults"]
    lines = [
        f"chaos {report['profile']} seed={report['seed']}: {report['verdict']}",
        f"  time: total {timing.get('total', 0):.0f} s (setup {timing.get('setup', 0):.0f}, "
        f"workload+faults {timing.get('workload', 0):.0f}, drain {timing.get('drain', 0):.0f}, "
        f"check {timing.get('check', 0):.0f})",
        f"  workflows: {workload['planned']} planned, {workload['committed']} committed "
        f"({workload['indeterminate']} after an unknown commit), {workload['rolled_back']} rolled back, "
        f"{workload['duplicate_starts']} started twice",
        f"  runs: {figures.get('run_status')}  results: {figures.get('run_results')}",
        f"  signals: {workload['signals_committed']} committed ({workload['early_signals']} early, "
        f"{workload['double_signals']} runs signalled twice), {workload['signals_refused']} refused (run finished); "
        f"cancels {workload['cancels']}",
        _composed_line(figures.get("composed") or {}),
        f"  worker kills: {faults.get('worker_kills_landed', 0)} landed "
        f"(pool {faults.get('child_kills_landed', 0)}/{faults.get('child_kills', 0)}, "
        f"main {faults.get('main_kills_landed', 0)}/{faults.get('main_kills', 0)}; "
        f"{faults.get('kills_mid_step', 0)} mid-step, {faults.get('kills_mid_transaction', 0)} mid-transaction)",
        f"  paused mid-step past the lease (zombies): {faults.get('pauses_landed', 0)}, "
        f"{faults.get('pauses_taken_over', 0)} taken over by another worker meanwhile\n"
        f"  backend terminations: {faults.get('terminations_landed', 0)} "
        f"({faults.get('terminations_mid_transaction', 0)} mid-transaction); "
        f"PostgreSQL restarts: {faults.get('pg_restarts', 0)}",
        f"  broker: {faults.get('broker_restarts', 0)} restarts ({faults.get('broker_restarts_lossy', 0)} lossy), "
        f"{faults.get('broker_flushes', 0)} FLUSHALL, {faults.get('messages_lost', 0)} queued messages lost; "
        f"publishes dropped {faults.get('publishes_dropped', 0)}, duplicated {faults.get('publishes_duplicated', 0)}",
        f"  fake API: {figures.get('api_applied_then_dropped', 0)} applied-then-dropped, "
        f"{figures.get('api_unavailable', 0)} 503s, {figures.get('ledger', {}).get('keys_repeated', 0)} keys "
        f"requested more than once (absorbed duplicates)",
        f"  steps: {figures.get('steps', 0)} ({figures.get('step_attempts', 0)} attempts, "
        f"{figures.get('steps_retried', 0)} retried); late writes refused: {report['logs'].get('refused_late_writes')}",
        f"  run seconds: {figures.get('run_seconds')}",
        f"  timer lateness: {figures.get('timer_lateness_seconds')}",
        f"  last run finished {figures.get('last_finish_after_last_fault_seconds')} s after the last fault",
        "  invariants:",
    ]
    exits = report.get("worker_exits", [])
    if exits:
        reasons = sorted({exit["reason"][-120:] for exit in exits})
        lines.insert(
            -1, f"  workers that exited on their own (restarted by the supervisor): {len(exits)}: {reasons[:2]}"
        )
    for name, item in report["invariants"].items():
        mark = "ok" if not item["violations"] else f"{item['violations']} VIOLATION(S)"
        lines.append(f"    {name:<24} {mark}")
        for offender in item["offenders"][:3]:
            lines.append(f"        {json.dumps(offender, default=str)[:300]}")
    missing = [f"{name} {c['landed']}/{c['minimum']}" for name, c in report["coverage"].items() if not c["ok"]]
    if missing:
        lines.append(f"  faults that did not land enough: {', '.join(missing)}")
    for error in report["harness_errors"][:5]:
        lines.append(f"  harness error: {error}")
    lines.append(f"  report: {report['report_path']}  artifacts: {report['run_dir']}")
    return "\n".join(lines)
