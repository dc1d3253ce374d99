"""DBOS Transact's sleepers, measured beside durable_django's (:mod:`benchmarks.sleepers`).

The same workload: ``N`` workflows, each sleeping until its own due time, due times spread
evenly at ``fire_rate`` a second from once all should be asleep (planned from a pilot, as for
the durable ones). DBOS runs it as its docs show for async code, in one process of its own
(:mod:`benchmarks.dbos_sleeper_peer`) against its own database: ``DBOS.start_workflow_async``
of a workflow that ``await``\\ s ``DBOS.sleep_async(due - time.time())``. Measured here, from
outside that process: its resident memory and its CPU and its PostgreSQL backends' CPU while
everything sleeps, the size of DBOS's tables, and the CPU other processes took while the
sleepers woke. Measured in it: starts per second, when all sleeps were checkpointed, and when
each workflow woke (``time.time()`` after its sleep, against the due time it was given).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .machine import TICKS, CpuWatch, wait_quiet
from .peer import TABLES, DbosBench, _Group, _reset
from .pgstats import Poller
from .scenarios import Bench
from .sleepers import _backends, _idle_cpu, _ticks

__all__ = ["measure_dbos_sleepers", "summary_lines"]

MODULE = "benchmarks.dbos_sleeper_peer"


def _percentile(ordered: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks, as PostgreSQL's ``percentile_cont`` (the durable figures)."""
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _lateness(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    names = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999}
    return {"min": ordered[0], **{name: _percentile(ordered, q) for name, q in names.items()}, "max": ordered[-1]}


def _table_bytes(poller: Poller) -> tuple[int, int]:
    """DBOS's tables' size (heap, indexes, TOAST) and how many workflows they hold (the pilot's too)."""
    tables = [table.strip() for table in TABLES.split(",")]
    (size,) = poller.row("SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t", (tables,))
    (workflows,) = poller.row("SELECT count(*) FROM dbos.workflow_status")
    return int(size), int(workflows)


def measure_dbos_sleepers(
    bench: Bench,
    dbos: DbosBench,
    count: int,
    *,
    fire_rate: float = 500.0,
    idle_window: float = 30.0,
    pilot: int = 500,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run ``count`` DBOS async sleepers in one process; return the figures (see the module docstring)."""
    _reset(dbos)
    wait_quiet(bench.quiet_below, bench.quiet_timeout, say=say)
    directory = dbos.log_dir / "sleepers"
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.iterdir():
        leftover.unlink()
    group = _Group(directory)
    poller = Poller(dbos.database_url)
    began = time.monotonic()
    args = ["--database-url", dbos.database_url, "--dir", str(directory), "--count", str(count)]
    args += ["--fire-rate", str(fire_rate), "--idle-window", str(idle_window), "--pilot", str(pilot)]
    try:
        process = group.spawn("sleepers", *args, module=MODULE)
        group.wait_files([directory / "ready"], timeout=120)
        (directory / "go").touch()
        # Bounded: the pilot, the start at 20 a second or faster, the due window, and margins.
        deadline = time.monotonic() + 300.0 + count / 20 + count / fire_rate
        group.wait_files([directory / "asleep"], timeout=deadline - time.monotonic())
        asleep = json.loads((directory / "asleep").read_text())
        table_bytes, workflows = _table_bytes(poller)
        window = min(idle_window, asleep["first_due"] - time.time() - 1.0)
        idle: dict[str, Any] | None = None
        if window >= 1.0 and not asleep["woke_before_all_asleep"]:
            idle = _idle_cpu([process.pid], _backends(poller, dbos.admin.dbname), window)
        else:
            say("    DBOS: no idle window: starting took longer than the pilot predicted")
        delay = asleep["first_due"] - time.time()
        if delay > 0:
            time.sleep(delay)
        assert group.pgid is not None
        watch = CpuWatch(dbos.admin.dbname, group.pgid)
        ticks = _ticks(process.pid)
        fire_began = time.monotonic()
        group.wait_files([directory / "result.json"], timeout=deadline - time.monotonic())
        usage = watch.read()
        firing_cpu = (_ticks(process.pid) - ticks) / TICKS / max(time.monotonic() - fire_began, 1e-9)
        process.wait(timeout=60)
        result = json.loads((directory / "result.json").read_text())
    finally:
        poller.close()
        group.stop()
    lateness = result.pop("lateness")
    completion = result.pop("completion_lateness")
    return {
        **result,
        "count": count,
        "fire_rate_planned": fire_rate,
        "starts_per_second": count / result["start_seconds"],
        "asleep_per_second": count / result["asleep_after_seconds"],
        "table_bytes": table_bytes,
        # The pilot's finished workflows are in the tables too (a few percent): divided by all of them.
        "bytes_per_run": table_bytes / max(workflows, 1),
        "idle": idle,
        "rss_per_sleeper_bytes": (idle["worker_rss_bytes"] - result["rss_before_bytes"]) / count if idle else None,
        "fired": len(lateness),
        "fired_per_second": len(lateness) / max(result["fired_window_seconds"], 1e-9),
        "fired_early": sum(value < 0 for value in lateness),
        "lost": count - len(lateness),
        "fire_lateness_seconds": _lateness(lateness),
        "completion_lateness_seconds": _lateness(completion),
        "firing_process_cpu_share": firing_cpu,
        "firing_machine_busy": usage.busy,
        "firing_other_cpu": usage.other,
        "total_seconds": time.monotonic() - began,
    }


def summary_lines(result: dict[str, Any], durable: dict[str, Any] | None) -> list[str]:
    """DBOS's sleepers for the printed report, and beside the durable ones where both were measured."""
    fire = result["fire_lateness_seconds"]
    idle = result["idle"]
    lines = [
        f"{result['count']:,} DBOS 3.4 async sleepers (await DBOS.sleep_async, started one by one with "
        "DBOS.start_workflow_async), one process:",
        f"  start           {result['starts_per_second']:,.0f} starts/s ({result['start_seconds']:.0f} s); all "
        f"sleeps checkpointed after {result['asleep_after_seconds']:.0f} s ({result['asleep_per_second']:,.0f}/s; "
        f"the pilot predicted {result['pilot_runs_per_second']:,.0f})",
        f"  database        {result['bytes_per_run']:,.0f} bytes per workflow (DBOS's tables, pilot included)",
    ]
    if idle is None:
        lines.append("  asleep          not measured: no idle window (starting took longer than the pilot predicted)")
    else:
        lines += [
            f"  asleep memory   {idle['worker_rss_bytes'] / 2**20:,.0f} MB (process RSS; "
            f"{result['rss_launched_bytes'] / 2**20:,.0f} MB once launched, {result['rss_before_bytes'] / 2**20:,.0f}"
            f" MB after the pilot, so {result['rss_per_sleeper_bytes'] / 1024:,.1f} KB per sleeper)",
            f"  asleep CPU      process {idle['worker_cpu_share']:.2%} of a core, its PostgreSQL backends "
            f"{idle['backend_cpu_share']:.2%}, over {idle['window_seconds']:.0f} s",
        ]
    if fire:
        lines.append(
            f"  wake lateness   p50 {fire['p50']:.3f} s, p90 {fire['p90']:.3f}, p99 {fire['p99']:.3f}, "
            f"max {fire['max']:.3f} (min {fire['min']:.4f}; {result['fired_early']} early, {result['lost']} lost)"
        )
    done = result.get("completion_lateness_seconds")
    if done:
        lines.append(f"  to completion   p50 {done['p50']:.3f} s, p99 {done['p99']:.3f}, max {done['max']:.3f}")
    lines.append(
        f"  due rate        {result['fire_rate_planned']:,.0f}/s planned over {result['due_window_seconds']:.0f} s; "
        f"woke {result['fired_per_second']:,.0f}/s; the process used "
        f"{result['firing_process_cpu_share']:.0%} of a core while they woke (other CPU "
        f"{result['firing_other_cpu']:.0%})"
    )
    if durable is not None and fire:
        lines += _beside(result, durable)
    return lines


def _beside(dbos: dict[str, Any], durable: dict[str, Any]) -> list[str]:
    """The durable sleepers against DBOS's, measured in this run."""
    ours, theirs = durable["fire_lateness_seconds"], dbos["fire_lateness_seconds"]
    lines = [
        f"  durable / DBOS  ({durable['count']:,} durable sleepers against {dbos['count']:,} DBOS ones)",
        f"    starts/s in the driver       {durable['starts_per_second']:,.0f} / {dbos['starts_per_second']:,.0f} "
        f"= {durable['starts_per_second'] / dbos['starts_per_second']:.2f}",
        f"    seconds until all asleep     {durable['asleep_after_seconds']:.0f} / {dbos['asleep_after_seconds']:.0f}",
    ]
    for name in ("p50", "p99", "max"):
        ratio = ours[name] / theirs[name] if theirs[name] > 0 else float("inf")
        lines.append(
            f"    wake lateness {name:<4} (s)       {ours[name]:.3f} / {theirs[name]:.3f} = {ratio:.2f} (lower wins)"
        )
    idle_ours, idle_theirs = durable.get("idle"), dbos["idle"]
    if idle_ours and idle_theirs and "worker_rss_bytes" in idle_ours:
        lines.append(
            f"    memory while asleep          worker {idle_ours['worker_rss_bytes'] / 2**20:,.0f} MB whatever the "
            f"number of sleepers (none held per run) / process {idle_theirs['worker_rss_bytes'] / 2**20:,.0f} MB, "
            f"{dbos['rss_per_sleeper_bytes'] / 1024:,.1f} KB per sleeper"
        )
    lines.append(f"    database bytes per sleeper   {durable['bytes_per_run']:,.0f} / {dbos['bytes_per_run']:,.0f}")
    return lines
