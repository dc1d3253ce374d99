"""``python -m benchmarks.run --profile``: where a worker process spends its time per step.

Runs the two durable scenarios once with every pool process under cProfile and counting
the SQL statements Django sends (see :mod:`benchmarks.instrument`), then prints the
statements per step and the functions with the most own time. cProfile slows Python code
down a lot, so the throughput of this run is not a benchmark figure; use ``py-spy`` on a
normal run for time shares (docs/performance.md shows how).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import signal
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.support.processes import CeleryWorker

from .machine import wait_quiet
from .scenarios import Bench, Scenario, measure

__all__ = ["profile"]


def _dumper(directory: Path) -> object:
    def dump(worker: CeleryWorker) -> None:
        children = worker.children()
        for pid in children:
            os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all((directory / f"child-{pid}.sql.json").exists() for pid in children):
                time.sleep(0.2)  # let the last write finish
                return
            time.sleep(0.05)
        raise RuntimeError(f"pool processes did not write their profiles to {directory}")

    return dump


def _statements(directory: Path, steps: int) -> list[str]:
    merged: dict[str, list[float]] = {}
    for path in directory.glob("child-*.sql.json"):
        for sql, entry in json.loads(path.read_text()).items():
            total = merged.setdefault(sql, [0, 0.0])
            total[0] += entry["count"]
            total[1] += entry["seconds"]
    lines = [f"{'per step':>8} {'ms/step':>7}  statement (Django's SQL, parameters as %s)"]
    ordered = sorted(merged.items(), key=lambda item: -item[1][0])
    for sql, (count, seconds) in ordered:
        text = sql if len(sql) <= 150 else sql[:147] + "..."
        lines.append(f"{count / steps:>8.2f} {seconds / steps * 1000:>7.3f}  {text}")
    count = sum(entry[0] for entry in merged.values())
    seconds = sum(entry[1] for entry in merged.values())
    lines.append(f"{count / steps:>8.2f} {seconds / steps * 1000:>7.3f}  all statements (time as seen by the worker)")
    return lines


def _functions(directory: Path, limit: int) -> str:
    """Functions by own time, then durable_django's functions by time including callees."""
    files = [str(path) for path in directory.glob("child-*.pstats")]
    stream = io.StringIO()
    pstats.Stats(*files, stream=stream).strip_dirs().sort_stats("tottime").print_stats(limit)
    pstats.Stats(*files, stream=stream).sort_stats("cumulative").print_stats(r"/durable_django/", limit)
    return stream.getvalue()


class _WaitClock:
    """Time spent in psycopg's ``Connection.wait``: blocked on PostgreSQL (round trip and server work)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._original = psycopg.Connection.wait

    def __enter__(self) -> _WaitClock:
        original = self._original

        def timed(connection: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(connection, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        psycopg.Connection.wait = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        psycopg.Connection.wait = self._original  # type: ignore[method-assign]


def in_process(workflows: int, steps: int) -> list[str]:
    """Run workflows one after the other in this process (no broker, no pool).

    ``start()`` commits, its on-commit hook hands the wake-up message to the task's body
    right here, and that runs every step inline: exactly a pool process's code path, minus
    Celery's messaging, and without competing with other workflows.
    """
    from django.db import connection

    from durable_django.store import outbox
    from durable_django.tasks import execute

    from .benchapp.workflows import atomic, trivial

    lines = [f"{'workflow':<9} {'ms/step':>7} {'waiting on PostgreSQL':>22} {'rest (Python)':>14}"]
    sending = outbox.send_message
    outbox.send_message = lambda item_id, options: execute(item_id)
    try:
        for name, start in (("trivial", lambda i: trivial.start(steps)), ("atomic", lambda i: atomic.start(i, steps))):
            for index in range(3):
                start(index)  # warm up: connection, imports, caches
            timings = []
            for _ in range(3):  # the median of three, against other work on the machine
                with _WaitClock() as clock:
                    began = time.perf_counter()
                    for index in range(workflows):
                        start(index)
                    timings.append((time.perf_counter() - began, clock.seconds))
            elapsed, waited = sorted(timings)[1]
            total = elapsed / (workflows * steps) * 1000
            waiting = waited / (workflows * steps) * 1000
            lines.append(
                f"{name:<9} {total:>7.2f} {waiting:>14.2f} ({waiting / total:>4.0%}) {total - waiting:>7.2f} "
                f"({1 - waiting / total:>4.0%})"
            )
    finally:
        outbox.send_message = sending
        connection.close()
    return lines


def profile(bench: Bench, args: argparse.Namespace) -> int:
    wait_quiet(bench.quiet_below, bench.quiet_timeout, say=print)
    print(f"=== In one process, {args.workflows} workflows of {args.steps} steps one after the other (median of 3) ===")
    print("\n".join(in_process(args.workflows, args.steps)))
    for key, name, title in (
        ("durable-trivial", "bench.trivial", "durable, trivial steps"),
        ("durable-atomic", "bench.atomic", "durable, atomic steps (1 insert each)"),
    ):
        directory = (bench.log_dir / "profile" / key).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        scenario = Scenario(
            key, title, "durable", args.workflows, args.steps, name, {"BENCH_PROFILE_DIR": str(directory)}, args.solo
        )
        result = measure(bench, scenario, 1, timeout=600, before_stop=_dumper(directory))  # type: ignore[arg-type]
        steps = (scenario.workflows + scenario.solo) * scenario.steps
        print(f"\n=== {title}: {steps} steps, {result.steps_per_second:.0f} steps/s under cProfile ===")
        print(
            f"PostgreSQL: {result.commits_per_step:.2f} commits and "
            f"{result.rows_written_per_step:.2f} rows written per step"
        )
        print("\n".join(_statements(directory, steps)))
        print(_functions(directory, 15))
        print(f"(profiles and SQL counts: {directory})")
    return 0
