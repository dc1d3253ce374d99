"""One measured scenario: start a worker, send a burst of workflows, wait, stop, count.

The window of a measurement runs from before the worker starts until after it has exited
and the driver has closed its connections, so PostgreSQL's counters for the benchmark
database are exact for it (see :mod:`benchmarks.pgstats`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from django.db import connection, connections

from durable_django.models import HistoryEntry, LostAttempt, Signal, WorkflowRun, WorkItem
from tests.support.processes import CeleryWorker

from .benchapp.models import Row
from .machine import CpuWatch, Usage, wait_quiet
from .pgstats import Admin, Counters, Poller
from .workload import Scenario, driver_for, wait_for

__all__ = ["Bench", "Result", "Scenario", "build_result", "measure", "measure_idle"]

CELERY_APP = "benchmarks.celery_app"


@dataclass(frozen=True, slots=True)
class Bench:
    """Where and how every scenario runs."""

    admin: Admin
    database_url: str
    broker_url: str
    log_dir: Path
    concurrency: int = 2
    poll_interval: float = 0.05
    #: Wait before each measurement until less than this fraction of the CPUs is busy...
    quiet_below: float = 0.15
    #: ...but no longer than this many seconds.
    quiet_timeout: float = 30.0


@dataclass(slots=True)
class Result:
    """The raw figures of one repetition of one scenario (written to the JSON file as is)."""

    scenario: str
    repetition: int
    workflows: int
    steps: int
    solo: int
    #: From the first start to the last completion of the burst, by the database's clock.
    wall_seconds: float
    workflows_per_second: float
    steps_per_second: float
    #: Worker time per step: wall time x pool processes / steps (the pool stays busy during a burst).
    ms_per_step: float
    latency_ms: list[float]
    latency_p50_ms: float
    latency_p95_ms: float
    solo_latency_p50_ms: float | None
    #: pg_stat_database.xact_commit over the window, minus the driver's own progress queries.
    commits: int
    progress_queries: int
    commits_per_step: float
    commits_per_workflow: float
    #: Transaction ids handed out during the window (only writing transactions take one); cluster-wide.
    write_transactions: int
    write_transactions_exact: bool
    rows_written_per_step: float
    worker_uptime_seconds: float
    #: Connections opened to the benchmark database during the window (pg_stat_database.sessions).
    connections_opened: int
    #: Autovacuum/autoanalyze runs on the benchmark database during the window.
    autovacuum_runs: int
    #: During the burst: share of all CPUs busy, and share used by other processes (all processes' less ours).
    machine_busy: float
    other_cpu: float
    #: CPU time per step of everything but other processes (worker, PostgreSQL, Redis, driver), in the burst.
    cpu_ms_per_step: float
    sweeper_republished: int
    stale_writes_refused: int
    counters: dict[str, int]


def _reset(bench: Bench) -> None:
    """Empty the tables and the broker's database index."""
    models = (WorkItem, LostAttempt, HistoryEntry, Signal, WorkflowRun, Row)
    tables = ", ".join(model._meta.db_table for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")  # schedules point at runs
    redis.Redis.from_url(bench.broker_url).flushdb()


def _vacuums() -> int:
    """Autovacuum and autoanalyze runs so far on the benchmark database (their transactions count too)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_user_tables")
        return int(cursor.fetchone()[0])


def _settle(bench: Bench, *, before: bool) -> tuple[Counters, int]:
    """Exact counters and the autovacuum count, read outside the window on either side of it."""
    if before:
        vacuums = _vacuums()
        connections.close_all()
        return bench.admin.settle_and_read(), vacuums
    counters = bench.admin.settle_and_read()
    # Backends flush table statistics at exit too, so the vacuum count is read after settling.
    return counters, _vacuums()


def _percentile(values: list[float], fraction: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def _worker(bench: Bench, scenario: Scenario, repetition: int) -> CeleryWorker:
    env = {
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_DATABASE_URL": bench.database_url,
        "BENCH_BROKER_URL": bench.broker_url,
        **scenario.worker_env,
    }
    env.setdefault("CELERY_DB_REUSE_MAX", "")
    log_dir = bench.log_dir / f"{scenario.key}-{repetition}"
    return CeleryWorker(CELERY_APP, env, log_dir, concurrency=bench.concurrency)


def _stop(worker: CeleryWorker, timeout: float = 20.0) -> None:
    """Warm shutdown: SIGTERM to the worker's main process only, as an init system should send it.

    ``CeleryWorker.stop()`` signals the whole process group, which interrupts a pool process
    in the middle of a task; here the pool finishes its current task first, and the group
    is only signalled (then killed) if the worker has not exited within ``timeout``.
    """
    process = worker.process
    if process is not None and process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    worker.stop()


def _log_counts(worker: CeleryWorker) -> tuple[int, int]:
    logs = worker.logs()
    republished = sum(int(n) for n in re.findall(r"sweeper republished (\d+) work item", logs))
    return republished, logs.count("refused a late write")


def measure(
    bench: Bench,
    scenario: Scenario,
    repetition: int,
    timeout: float,
    before_stop: Callable[[CeleryWorker], None] | None = None,
) -> Result:
    """Run one repetition of ``scenario`` and return its figures.

    ``before_stop`` is called with the worker once every workflow has finished (profiling).
    """
    _reset(bench)
    wait_quiet(bench.quiet_below, bench.quiet_timeout, say=lambda text: print(text, flush=True))
    before, vacuums_before = _settle(bench, before=True)
    worker = _worker(bench, scenario, repetition)
    poller: Poller | None = None
    up = time.monotonic()
    try:
        worker.start()
        poller = Poller(bench.database_url)
        driver = driver_for(scenario, poller)
        watch = CpuWatch(bench.admin.dbname, worker.pid)
        t0 = time.time()
        driver.burst()
        connections.close_all()
        wait_for(
            driver.burst_done,
            timeout=timeout,
            interval=bench.poll_interval,
            what=f"{scenario.workflows} {scenario.key} workflows",
        )
        usage = watch.read()
        driver.solo(timeout=30.0)
        if before_stop is not None:
            before_stop(worker)
    except BaseException:
        worker.kill()
        raise
    finally:
        _stop(worker)
        uptime = time.monotonic() - up
        if poller is not None:
            poller.close()
        connections.close_all()
    after, vacuums_after = _settle(bench, before=False)
    delta = after - before
    burst, solo = driver.timings()
    driver.check()
    connections.close_all()
    republished, refused = _log_counts(worker)
    return build_result(
        scenario,
        repetition,
        bench.concurrency,
        t0,
        burst,
        solo,
        delta,
        poller.queries,
        uptime,
        usage,
        autovacuum_runs=vacuums_after - vacuums_before,
        sweeper_republished=republished,
        stale_writes_refused=refused,
    )


def build_result(
    scenario: Scenario,
    repetition: int,
    concurrency: int,
    t0: float,
    burst: list[tuple[float, float]],
    solo: list[float],
    delta: Counters,
    queries: int,
    uptime: float,
    usage: Usage,
    *,
    autovacuum_runs: int,
    sweeper_republished: int = 0,
    stale_writes_refused: int = 0,
) -> Result:
    """One repetition's figures from its timings and counters; shared by every system measured."""
    wall = max(end for _, end in burst) - t0
    total_steps = scenario.workflows * scenario.steps
    counted_workflows = scenario.workflows + scenario.solo
    counted_steps = counted_workflows * scenario.steps
    latencies = sorted((end - start) * 1000 for start, end in burst)
    commits = delta.xact_commit - queries
    return Result(
        scenario=scenario.key,
        repetition=repetition,
        workflows=scenario.workflows,
        steps=scenario.steps,
        solo=scenario.solo,
        wall_seconds=wall,
        workflows_per_second=scenario.workflows / wall,
        steps_per_second=total_steps / wall,
        ms_per_step=wall * concurrency / total_steps * 1000,
        latency_ms=[round(value, 2) for value in latencies],
        latency_p50_ms=_percentile(latencies, 0.50),
        latency_p95_ms=_percentile(latencies, 0.95),
        solo_latency_p50_ms=statistics.median(solo) if solo else None,
        commits=commits,
        progress_queries=queries,
        commits_per_step=commits / counted_steps,
        commits_per_workflow=commits / counted_workflows,
        write_transactions=delta.next_xid,
        write_transactions_exact=delta.others_written == 0,
        rows_written_per_step=(delta.tup_inserted + delta.tup_updated + delta.tup_deleted) / counted_steps,
        worker_uptime_seconds=uptime,
        connections_opened=delta.sessions,
        autovacuum_runs=autovacuum_runs,
        machine_busy=usage.busy,
        other_cpu=usage.other,
        cpu_ms_per_step=usage.own_seconds * 1000 / total_steps,
        sweeper_republished=sweeper_republished,
        stale_writes_refused=stale_writes_refused,
        counters=asdict(delta),
    )


def measure_idle(bench: Bench, seconds: float) -> dict[str, Any]:
    """Commits of a durable worker that has nothing to do: start-up, sweeps, shutdown."""
    _reset(bench)
    before, _ = _settle(bench, before=True)
    worker = _worker(bench, Scenario("idle", "idle worker", "durable", 0, 0), 0)
    up = time.monotonic()
    try:
        worker.start()
        time.sleep(seconds)
    finally:
        _stop(worker)
    uptime = time.monotonic() - up
    delta = bench.admin.settle_and_read() - before
    return {
        "uptime_seconds": uptime,
        "commits": delta.xact_commit,
        "commits_per_second": delta.xact_commit / uptime,
        "connections_opened": delta.sessions,
    }
