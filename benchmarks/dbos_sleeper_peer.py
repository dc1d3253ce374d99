"""The peer of the sleepers: ``N`` async DBOS workflows, each ``await DBOS.sleep_async(...)``, in one process.

A program of its own (like :mod:`benchmarks.dbos_peer`), started by
:mod:`benchmarks.dbos_sleepers`. It does what DBOS's docs show for async code: ``DBOS.launch()``,
then ``DBOS.start_workflow_async`` of a workflow that awaits ``DBOS.sleep_async`` and returns.
DBOS's sleep is relative: the workflow asks for ``due - time.time()`` seconds; ``sleep_async``
checkpoints the wake-up instant (``time.time() + seconds``, by this process's clock) in
``dbos.operation_outputs`` on an executor thread, then ``asyncio.sleep``\\ s for the rest. So
each sleeper is a live coroutine (with its task, context and frames) in this process until it
wakes; the checkpoint is only read back on recovery.

Phases, each announced to the parent by a file in ``--dir``:

- ``ready``: DBOS launched (its start-up is outside the measurement); wait for ``go``.
- a pilot of ``--pilot`` sleepers due at once measures the start rate, so that the first of
  the ``N`` is due once all are started and asleep (with a 50 % margin) plus the idle window;
- ``asleep``: all ``N`` are started and their sleeps checkpointed (counted in the database);
  the parent measures this process's memory and CPU while they sleep;
- ``result.json``: all woke (or the deadline passed); wake-up lateness is ``time.time()``
  recorded by the workflow right after its sleep minus the due time it was given, by the same
  clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import psycopg
from dbos import DBOS, SetWorkflowID

from .dbos_peer import _await_file, _config

#: Workflow id -> when it woke (time.time()): written by the workflows, read at the end.
WOKE: dict[str, float] = {}
#: Workflows started after their due time: DBOS.sleep_async(0 or less) returns without a checkpoint.
OVERDUE: set[str] = set()


@DBOS.workflow(name="sleeper")
async def sleeper(key: str, due: float) -> float:
    seconds = due - time.time()
    if seconds <= 0:
        OVERDUE.add(key)
    await DBOS.sleep_async(seconds)
    woke = time.time()
    WOKE[key] = woke
    return woke


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Checkpoints:
    """Sleeps checkpointed so far, counted in DBOS's table on a connection of its own (off the event loop)."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True)
        self.queries = 0

    def count(self, prefix: str) -> int:
        return self._value(
            "SELECT count(*) FROM dbos.operation_outputs WHERE function_name = 'DBOS.sleep' AND workflow_uuid LIKE %s",
            prefix,
        )

    def succeeded(self, prefix: str) -> int:
        return self._value(
            "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' AND workflow_uuid LIKE %s", prefix
        )

    def completed(self, prefix: str) -> dict[str, float]:
        """Workflow id -> ``completed_at`` (the database's ``now()`` in the transaction that recorded the output)."""
        self.queries += 1
        rows = self.connection.execute(
            "SELECT workflow_uuid, completed_at FROM dbos.workflow_status"
            " WHERE status = 'SUCCESS' AND workflow_uuid LIKE %s",
            (prefix + "-%",),
        ).fetchall()
        return {key: completed / 1000 for key, completed in rows}

    def _value(self, sql: str, prefix: str) -> int:
        self.queries += 1
        row = self.connection.execute(sql, (prefix + "-%",)).fetchone()
        return int(row[0]) if row else 0

    async def wait(self, prefix: str, expected: int, deadline: float) -> tuple[float, int]:
        """Poll every 0.2 s until ``expected`` sleeps are checkpointed (or overdue, so never asleep).

        Returns when (time.time()) and how many.
        """
        while time.time() < deadline:
            overdue = sum(key.startswith(prefix + "-") for key in OVERDUE)
            if (done := await asyncio.to_thread(self.count, prefix) + overdue) >= expected:
                break
            await asyncio.sleep(0.2)
        return time.time(), done

    def close(self) -> None:
        self.connection.close()


async def _start(prefix: str, dues: list[float]) -> None:
    """One ``DBOS.start_workflow_async`` after the other, as DBOS's docs show (each is its own transaction)."""
    for index, due in enumerate(dues):
        key = f"{prefix}-{index}"
        with SetWorkflowID(key):
            await DBOS.start_workflow_async(sleeper, key, due)


async def _pilot(checkpoints: Checkpoints, count: int) -> float:
    """Sleepers started and asleep per second, measured on ``count`` of them due at once (then awaited)."""
    began = time.time()
    # Due once all should be asleep at 50 starts a second or more: a sleeper started past its due
    # time would never sleep (nor be checkpointed).
    await _start("pilot", [began + 1.0 + count / 50] * count)
    asleep, done = await checkpoints.wait("pilot", count, began + 120.0)
    if done < count:
        raise RuntimeError(f"only {done} of {count} pilot sleepers were checkpointed in 120 s")
    while sum(key.startswith("pilot-") for key in WOKE) < count and time.time() < began + 180.0:
        await asyncio.sleep(0.1)
    return count / (asleep - began)


async def _measure(args: argparse.Namespace, directory: Path) -> dict[str, object]:
    checkpoints = Checkpoints(args.database_url)
    try:
        rss_launched = _rss()
        rate = await _pilot(checkpoints, min(args.pilot, args.count))
        # The baseline of the sleepers' memory: after the pilot, so what it left counts for neither.
        rss_before = _rss()
        settle = args.count / rate * 1.5 + args.idle_window + 5.0
        first_due = time.time() + settle
        dues = [first_due + index / args.fire_rate for index in range(args.count)]
        deadline = dues[-1] + 120.0
        t0 = time.time()
        await _start("sleep", dues)
        started = time.time()
        asleep_at, asleep = await checkpoints.wait("sleep", args.count, deadline)
        woke_before_all_asleep = len([key for key in WOKE if key.startswith("sleep-")])
        (directory / "asleep").write_text(
            json.dumps({"first_due": first_due, "woke_before_all_asleep": woke_before_all_asleep})
        )
        while len(WOKE) - min(args.pilot, args.count) < args.count and time.time() < deadline:
            await asyncio.sleep(0.05)
        fired_at = time.time()
        last_woke = max((woke for key, woke in WOKE.items() if key.startswith("sleep-")), default=first_due)
        # The last wake-ups' completions written (DBOS does that on an executor thread after the return).
        woke = len(WOKE) - min(args.pilot, args.count)
        while (succeeded := await asyncio.to_thread(checkpoints.succeeded, "sleep")) < woke:
            if time.time() > fired_at + 30.0:
                break
            await asyncio.sleep(0.1)
        completed = await asyncio.to_thread(checkpoints.completed, "sleep")
    finally:
        checkpoints.close()
    return {
        "pilot_runs_per_second": rate,
        "settle_seconds": settle,
        "first_due": first_due,
        "start_seconds": started - t0,
        "asleep_after_seconds": asleep_at - t0,
        "asleep": asleep,
        "fired_window_seconds": last_woke - first_due,
        "due_window_seconds": dues[-1] - first_due,
        "woke_before_all_asleep": woke_before_all_asleep,
        "overdue_at_start": sum(key.startswith("sleep-") for key in OVERDUE),
        "succeeded": succeeded,
        "rss_launched_bytes": rss_launched,
        "rss_before_bytes": rss_before,
        "progress_queries": checkpoints.queries,
        "lateness": [WOKE[f"sleep-{index}"] - due for index, due in enumerate(dues) if f"sleep-{index}" in WOKE],
        "completion_lateness": [
            completed[f"sleep-{index}"] - due for index, due in enumerate(dues) if f"sleep-{index}" in completed
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dbos_sleeper_peer")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--dir", type=Path, required=True, help="where the phase files and result.json go")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--fire-rate", type=float, default=500.0)
    parser.add_argument("--idle-window", type=float, default=30.0)
    parser.add_argument("--pilot", type=int, default=500)
    args = parser.parse_args(argv)
    DBOS(config=_config(args.database_url, "bench"))  # type: ignore[arg-type]
    DBOS.launch()
    try:
        (args.dir / "ready").write_text(str(os.getpid()))
        _await_file(str(args.dir / "go"), 60.0)
        result = asyncio.run(_measure(args, args.dir))
        (args.dir / "result.json").write_text(json.dumps(result))
    finally:
        DBOS.destroy(destroy_registry=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
