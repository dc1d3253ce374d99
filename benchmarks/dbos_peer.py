"""The peer: the same 10-step workflow of trivial steps on DBOS Transact, run as its docs show.

A separate program, so that DBOS (its SQLAlchemy engine, its threads) never shares a
process with the Django driver; :mod:`benchmarks.peer` starts it, by process id, and
reads every figure from DBOS's own tables afterwards. Three roles:

``inproc``  DBOS launched in this process, which starts the workflows itself with
            ``DBOS.start_workflow`` (they run on DBOS's executor threads) and waits.
``worker``  DBOS launched with the queue ``bench`` registered; it runs what is enqueued
            there until SIGTERM. Two of them are the "2 worker processes" case.
``client``  ``DBOSClient`` enqueues the workflows on ``bench`` and waits for them.

Waiting is a counted ``SELECT count(*)`` every few milliseconds on a psycopg connection
of its own (not DBOS's ``get_result`` polling), printed at exit as ``{"progress_queries": n}``
so the parent can subtract those commits, as it does for the durable driver.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import psycopg
from dbos import DBOS, DBOSClient, SetWorkflowID

QUEUE = "bench"
WORKFLOW = "trivial"


@DBOS.step()
def noop(value: int) -> int:
    """A trivial step: what the engine itself costs per step."""
    return value + 1


@DBOS.workflow(name=WORKFLOW)
def trivial(steps: int) -> int:
    value = 0
    for _ in range(steps):
        value = noop(value)
    return value


class Progress:
    """Counted progress queries against DBOS's workflow_status table."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True)
        self.queries = 0

    def done(self, pattern: str) -> int:
        self.queries += 1
        row = self.connection.execute(
            "SELECT count(*) FILTER (WHERE status = 'SUCCESS'),"
            " count(*) FILTER (WHERE status NOT IN ('SUCCESS', 'PENDING', 'ENQUEUED'))"
            " FROM dbos.workflow_status WHERE workflow_uuid LIKE %s",
            (pattern,),
        ).fetchone()
        assert row is not None
        if row[1]:
            raise RuntimeError(f"{row[1]} DBOS workflow(s) failed")
        return int(row[0])

    def wait(self, pattern: str, expected: int, timeout: float, interval: float) -> None:
        deadline = time.monotonic() + timeout
        while self.done(pattern) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:g} s waiting for {expected} DBOS workflows {pattern}")
            time.sleep(interval)

    def close(self) -> None:
        self.connection.close()


def _await_file(path: str, timeout: float) -> None:
    """Wait for the parent to create ``path`` (it says "go"); nothing to wait for without one."""
    deadline = time.monotonic() + timeout
    while path and not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {path} after {timeout:g} s")
        time.sleep(0.002)


def _handshake(args: argparse.Namespace) -> None:
    """Ready: tell the parent, and wait for its go (so DBOS's start-up is outside the measurement)."""
    if args.ready_file:
        Path(args.ready_file).write_text(str(os.getpid()))
    _await_file(args.go_file, 60.0)


def _burst_done(args: argparse.Namespace) -> None:
    if args.burst_done_file:
        Path(args.burst_done_file).write_text("")
    _await_file(args.solo_go_file, 60.0)


def _config(url: str, name: str) -> dict[str, object]:
    return {
        "name": name,
        "system_database_url": url.replace("postgres://", "postgresql://", 1),
        "log_level": "WARNING",
        # Same application version in every process, so any worker may run what the client enqueued.
        "application_version": "bench",
    }


def run_inproc(args: argparse.Namespace) -> int:
    DBOS(config=_config(args.database_url, "bench"))  # type: ignore[arg-type]
    DBOS.launch()
    progress = Progress(args.database_url)
    _handshake(args)
    try:
        for index in range(args.workflows):
            with SetWorkflowID(f"burst-{index}"):
                DBOS.start_workflow(trivial, args.steps)
        progress.wait("burst-%", args.workflows, args.timeout, 0.05)
        _burst_done(args)
        for index in range(args.solo):
            with SetWorkflowID(f"solo-{index}"):
                DBOS.start_workflow(trivial, args.steps)
            progress.wait(f"solo-{index}", 1, 30.0, 0.005)
    finally:
        progress.close()
        DBOS.destroy(destroy_registry=False)
    print(json.dumps({"progress_queries": progress.queries}), flush=True)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def terminate(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    DBOS(config=_config(args.database_url, "bench"))  # type: ignore[arg-type]
    DBOS.launch()
    try:
        DBOS.register_queue(
            QUEUE,
            worker_concurrency=args.worker_concurrency,
            polling_interval_sec=args.polling_interval,
            on_conflict="always_update",
        )
        Path(args.ready_file).write_text(str(os.getpid()))
        stop.wait(args.timeout)
    finally:
        DBOS.destroy(destroy_registry=False)
    return 0


def run_client(args: argparse.Namespace) -> int:
    client = DBOSClient(system_database_url=args.database_url.replace("postgres://", "postgresql://", 1))
    progress = Progress(args.database_url)
    _handshake(args)
    try:
        for index in range(args.workflows):
            client.enqueue(
                {"queue_name": QUEUE, "workflow_name": WORKFLOW, "workflow_id": f"burst-{index}"}, args.steps
            )
        progress.wait("burst-%", args.workflows, args.timeout, 0.05)
        _burst_done(args)
        for index in range(args.solo):
            client.enqueue({"queue_name": QUEUE, "workflow_name": WORKFLOW, "workflow_id": f"solo-{index}"}, args.steps)
            progress.wait(f"solo-{index}", 1, 30.0, 0.005)
    finally:
        progress.close()
        client.destroy()
    print(json.dumps({"progress_queries": progress.queries}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dbos_peer")
    parser.add_argument("role", choices=["inproc", "worker", "client"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--solo", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--worker-concurrency", type=int, default=10)
    parser.add_argument("--polling-interval", type=float, default=0.05)
    parser.add_argument("--ready-file", default="")
    parser.add_argument("--go-file", default="")
    parser.add_argument("--burst-done-file", default="")
    parser.add_argument("--solo-go-file", default="")
    args = parser.parse_args(argv)
    return {"inproc": run_inproc, "worker": run_worker, "client": run_client}[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
