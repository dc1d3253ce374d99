"""DBOS Transact measured like durable_django: same workflow, same PostgreSQL server, same counters.

DBOS runs in programs of its own (:mod:`benchmarks.dbos_peer`) against its own database
(``dbos_bench``, dropped and recreated once per ``make bench``), started and stopped here
by process id, in one process group per measurement so that nothing outlives it. Two
shapes, as DBOS's docs show them:

- ``dbos-1proc``: one process launches DBOS and starts the workflows with
  ``DBOS.start_workflow`` (DBOS's executor threads run them);
- ``dbos-2proc``: two worker processes launch DBOS and serve a queue; a third process
  enqueues with ``DBOSClient`` (the analogue of the durable driver and its Celery pool).

Every figure comes from ``dbos.workflow_status`` (``created_at``, ``completed_at``, the
database's clock in ms) and from ``pg_stat_database`` over a window with no backend
connected, exactly as for durable_django (:mod:`benchmarks.pgstats`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .machine import CpuWatch, wait_quiet
from .pgstats import Admin
from .scenarios import Bench, Result, build_result
from .workload import Scenario

__all__ = ["DbosBench", "available", "measure_dbos", "prepare"]

ROOT = Path(__file__).resolve().parent.parent
TABLES = (
    "dbos.workflow_status, dbos.operation_outputs, dbos.workflow_input, dbos.workflow_output, "
    "dbos.notifications, dbos.workflow_events, dbos.workflow_events_history, dbos.streams"
)


def available() -> bool:
    """Whether DBOS is installed (the ``bench`` extra of this project)."""
    return importlib.util.find_spec("dbos") is not None


@dataclass(frozen=True, slots=True)
class DbosBench:
    admin: Admin
    database_url: str
    log_dir: Path
    #: Per worker process: at most this many workflows running at once (DBOS queue ``worker_concurrency``).
    worker_concurrency: int = 10
    #: How often each worker process polls the queue (DBOS's default is 1 s).
    polling_interval: float = 0.05


class _Group:
    """DBOS processes of one measurement, all in one process group; killed together, by group id."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.pgid: int | None = None

    def spawn(self, name: str, *args: str, module: str = "benchmarks.dbos_peer") -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", module, *args]
        # A process group of their own (in this session, so that the later ones may join it).
        group = 0 if self.pgid is None else self.pgid
        with open(self.log_dir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, process_group=group)
        if self.pgid is None:
            self.pgid = process.pid
        self.processes.append(process)
        return process

    def wait_files(self, paths: list[Path], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(path.exists() for path in paths):
            for process in self.processes:
                if process.poll() is not None and process.returncode != 0:
                    raise RuntimeError(f"a DBOS process exited with {process.returncode}; see {self.log_dir}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"DBOS processes not ready after {timeout:g} s; see {self.log_dir}")
            time.sleep(0.01)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM each live process, wait, then SIGKILL the group."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def prepare(dbos: DbosBench) -> None:
    """Recreate the DBOS database and let DBOS create its schema once, outside any measurement."""
    dbos.admin.recreate_database()
    group = _Group(dbos.log_dir / "prepare")
    try:
        process = group.spawn(
            "migrate", "inproc", "--database-url", dbos.database_url, "--workflows", "3", "--solo", "0"
        )
        process.wait(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"DBOS could not start; see {group.log_dir / 'migrate.log'}")
    finally:
        group.stop()


def _reset(dbos: DbosBench) -> int:
    """Empty DBOS's tables; returns the autovacuum count so far (read before the window opens)."""
    with psycopg.connect(dbos.database_url, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {TABLES}")
        return _vacuums(connection)


def _vacuums(connection: psycopg.Connection[tuple[int, ...]]) -> int:
    row = connection.execute(
        "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables"
        " WHERE schemaname = 'dbos'"
    ).fetchone()
    return int(row[0]) if row else 0


def _timings(dbos: DbosBench) -> tuple[list[tuple[float, float]], list[float], int]:
    with psycopg.connect(dbos.database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT workflow_uuid, created_at, completed_at, status FROM dbos.workflow_status"
        ).fetchall()
        vacuums = _vacuums(connection)
    broken = [row for row in rows if row[3] != "SUCCESS"]
    if broken:
        raise RuntimeError(f"{len(broken)} DBOS workflow(s) did not succeed, such as {broken[0]}")
    burst = [(created / 1000, done / 1000) for wid, created, done, _ in rows if wid.startswith("burst-")]
    solo = [float(done - created) for wid, created, done, _ in rows if wid.startswith("solo-")]
    return burst, solo, vacuums


def measure_dbos(bench: Bench, dbos: DbosBench, scenario: Scenario, repetition: int, timeout: float) -> Result:
    """One repetition of a DBOS scenario (``scenario.workflow`` is ``inproc`` or ``queue``)."""
    vacuums_before = _reset(dbos)
    wait_quiet(bench.quiet_below, bench.quiet_timeout, say=lambda text: print(text, flush=True))
    before = dbos.admin.settle_and_read()
    log_dir = dbos.log_dir / f"{scenario.key}-{repetition}"
    group = _Group(log_dir)
    go, burst_done, solo_go = (log_dir / name for name in ("go", "burst-done", "solo-go"))
    common = ["--database-url", dbos.database_url, "--timeout", str(timeout)]
    driver = ["--workflows", str(scenario.workflows), "--steps", str(scenario.steps), "--solo", str(scenario.solo)]
    files = ["--go-file", str(go), "--burst-done-file", str(burst_done), "--solo-go-file", str(solo_go)]
    up = time.monotonic()
    try:
        ready = []
        if scenario.workflow == "queue":
            for index in (1, 2):
                ready.append(log_dir / f"worker-{index}.ready")
                group.spawn(
                    f"worker-{index}", "worker", *common, "--ready-file", str(ready[-1]),
                    "--worker-concurrency", str(dbos.worker_concurrency),
                    "--polling-interval", str(dbos.polling_interval),
                )  # fmt: skip
            role = "client"
        else:
            role = "inproc"
        ready.append(log_dir / f"{role}.ready")
        main = group.spawn(role, role, *common, *driver, *files, "--ready-file", str(ready[-1]))
        group.wait_files(ready, timeout=60)
        assert group.pgid is not None
        watch = CpuWatch(dbos.admin.dbname, group.pgid)
        t0 = time.time()
        go.touch()
        group.wait_files([burst_done], timeout=timeout)
        usage = watch.read()
        solo_go.touch()
        main.wait(timeout=timeout)
        if main.returncode != 0:
            raise RuntimeError(f"the DBOS {role} exited with {main.returncode}; see {log_dir}")
        output = (log_dir / f"{role}.log").read_text().strip().splitlines()
        queries = int(json.loads(output[-1])["progress_queries"])
    finally:
        group.stop()
        uptime = time.monotonic() - up
    after = dbos.admin.settle_and_read()
    delta = after - before
    burst, solo, vacuums_after = _timings(dbos)
    # _timings opened a connection after the window closed; it does not count.
    processes = 2 if scenario.workflow == "queue" else 1
    return build_result(
        scenario,
        repetition,
        processes,
        t0,
        burst,
        solo,
        delta,
        queries,
        uptime,
        usage,
        autovacuum_runs=vacuums_after - vacuums_before,
    )
