"""Turn repetitions into medians, a compact table, ratios against the baselines, and JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .scenarios import Result, Scenario

__all__ = ["medians", "render", "write_json"]

MEDIAN_FIELDS = (
    "wall_seconds",
    "workflows_per_second",
    "steps_per_second",
    "ms_per_step",
    "latency_p50_ms",
    "latency_p95_ms",
    "solo_latency_p50_ms",
    "commits",
    "commits_per_step",
    "commits_per_workflow",
    "write_transactions",
    "rows_written_per_step",
    "sweeper_republished",
    "stale_writes_refused",
    "other_cpu",
)


def medians(results: Iterable[Result]) -> dict[str, dict[str, Any]]:
    """Median of every figure over the repetitions, per scenario."""
    grouped: dict[str, list[Result]] = {}
    for result in results:
        grouped.setdefault(result.scenario, []).append(result)
    summary: dict[str, dict[str, Any]] = {}
    for key, runs in grouped.items():
        row: dict[str, Any] = {"repetitions": len(runs), "workflows": runs[0].workflows, "steps": runs[0].steps}
        for name in MEDIAN_FIELDS:
            values = [getattr(run, name) for run in runs if getattr(run, name) is not None]
            row[name] = statistics.median(values) if values else None
        counted = [(run.workflows + run.solo) for run in runs]
        row["write_transactions_per_workflow"] = statistics.median(
            run.write_transactions / count for run, count in zip(runs, counted, strict=True)
        )
        row["write_transactions_exact"] = all(run.write_transactions_exact for run in runs)
        summary[key] = row
    return summary


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _table(scenarios: list[Scenario], summary: dict[str, dict[str, Any]]) -> list[str]:
    header = (
        f"{'scenario':<44} {'wf/s':>7} {'steps/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'alone ms':>8} "
        f"{'ms/step':>7} {'commits/wf':>10} {'/step':>5} {'writes/wf':>9} {'other':>5}"
    )
    lines = [header, "-" * len(header)]
    for scenario in scenarios:
        row = summary.get(scenario.key)
        if row is None:
            continue
        approx = "" if row["write_transactions_exact"] else "~"
        lines.append(
            f"{scenario.title:<44} {_number(row['workflows_per_second'], 1):>7} "
            f"{_number(row['steps_per_second']):>8} {_number(row['latency_p50_ms']):>8} "
            f"{_number(row['latency_p95_ms']):>8} {_number(row['solo_latency_p50_ms'], 1):>8} "
            f"{_number(row['ms_per_step'], 2):>7} {_number(row['commits_per_workflow'], 1):>10} "
            f"{_number(row['commits_per_step'], 2):>5} "
            f"{approx + _number(row['write_transactions_per_workflow'], 1):>9} {row['other_cpu']:>5.0%}"
        )
    return lines


def _ratios(summary: dict[str, dict[str, Any]], steps: int) -> list[str]:
    """One line per target: the figure, the target, and whether this run met it."""
    rows: list[tuple[str, str, str, str]] = []

    def figure(key: str, name: str) -> float | None:
        row = summary.get(key)
        return None if row is None else row[name]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    budget = steps + 2
    for key, label in (("durable-trivial", "trivial"), ("durable-atomic", "atomic")):
        per_workflow = figure(key, "commits_per_workflow")
        if per_workflow is not None:
            rows.append(
                (
                    f"commits per workflow, durable {label}",
                    f"{per_workflow:.2f}",
                    f"<= {budget}",
                    verdict(per_workflow <= budget),
                )
            )
    atomic = figure("durable-atomic", "steps_per_second")
    trivial = figure("durable-trivial", "steps_per_second")
    for chain_key, chain_label in (("chain-default", "Celery default"), ("chain-reuse", "conn. reused")):
        chain = figure(chain_key, "steps_per_second")
        if chain is None:
            continue
        if atomic is not None:
            ratio = atomic / chain
            rows.append(
                (f"steps/s durable atomic / chain ({chain_label})", f"{ratio:.2f}", ">= 1.00", verdict(ratio >= 1))
            )
        if trivial is not None:
            rows.append((f"steps/s durable trivial / chain ({chain_label})", f"{trivial / chain:.2f}", "", "reference"))
    long_ms, short_ms = figure("durable-long", "ms_per_step"), figure("durable-trivial", "ms_per_step")
    if long_ms is not None and short_ms is not None:
        ratio = long_ms / short_ms
        long_steps = summary["durable-long"]["steps"]
        rows.append(
            (
                f"ms/step at {long_steps:,} steps / at {steps} ({long_ms:.2f} / {short_ms:.2f})",
                f"{ratio:.2f}",
                "<= 1.20",
                verdict(ratio <= 1.2),
            )
        )
    return [f"  {name:<52} {value:>7}   {target:<8} {outcome}" for name, value, target, outcome in rows]


def render(
    scenarios: list[Scenario], summary: dict[str, dict[str, Any]], config: dict[str, Any], idle: dict[str, Any] | None
) -> str:
    steps = config["steps"]
    repetitions = max((row["repetitions"] for row in summary.values()), default=0)
    lines = [
        "",
        f"Median of {repetitions} repetition(s); {config['workflows']} workflows of {steps} steps started in a burst "
        f"(+{config['solo']} run alone), {config['concurrency']} prefork worker processes.",
        "",
        *_table(scenarios, summary),
        "",
        "Ratios against the baselines measured in this run:",
        *_ratios(summary, steps),
        "",
        "How to read it:",
        "  wf/s, steps/s   burst throughput: first start to last completion (database clock)",
        "  p50/p95 ms      start -> completed of each workflow in the burst (includes waiting in the queue)",
        "  alone ms        median start -> completed of a workflow started alone on an idle worker",
        "  ms/step         worker time per step: wall time x worker processes / steps",
        "  commits         pg_stat_database.xact_commit of the benchmark database, exact (read with no backend",
        "                  connected), from before the worker starts to after it exits: the driver's starts (1 each)",
        "                  and its connection set-up, every worker transaction including read-only ones and",
        "                  connection set-up, and the durable sweeper's periodic transactions; minus the driver's",
        "                  own progress queries (counted). Autovacuum transactions, if any ran, are included.",
        "  writes/wf       transaction ids handed out (only writing transactions take one) per workflow;",
        "                  cluster-wide, so '~' marks a window in which another database was written to too.",
        "  other           CPU share other processes on this machine used during the measurement (a lower bound);",
        "                  above a few percent, the throughput and latency figures of that row are too low.",
    ]
    if idle is not None:
        lines.append(
            f"  idle durable worker: {idle['commits']} commits in {idle['uptime_seconds']:.1f} s of uptime "
            f"(start-up, sweeps every 2 s, shutdown): {idle['commits_per_second']:.2f}/s included above for "
            "durable rows."
        )
    return "\n".join(lines)


def write_json(
    directory: Path,
    stamp: str,
    config: dict[str, Any],
    machine: dict[str, Any],
    results: list[Result],
    summary: dict[str, dict[str, Any]],
    idle: dict[str, Any] | None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    document = {
        "config": config,
        "machine": machine,
        "idle_worker": idle,
        "medians": summary,
        "runs": [asdict(result) for result in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
