"""The broker's faults: a restart that loses what it held, and a flush of a running broker.

To make either lose messages for sure, the workers' main processes (the harness's own, by
pid) may be stopped for a few seconds first, so that messages wait in the broker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

from .cluster import Cluster
from .services import RabbitMQ, Redis


def restart(broker: Redis | RabbitMQ, cluster: Cluster, stop: threading.Event, *, lossy: bool) -> dict[str, Any]:
    """Kill the broker and start it again: what it held is lost (no Redis persistence; a deleted vhost)."""
    queued, unacked = _wait_for_queued(broker, 1.0 if lossy else 0.0, stop)
    paused: list[int] = []
    if lossy and not queued:  # the workers keep up: stall them (SIGSTOP) until messages wait in the broker
        paused = _pause_workers(cluster)
        try:
            queued, unacked = _wait_for_queued(broker, 5.0, stop)
            broker.crash()
        finally:
            _resume(paused)
    else:
        broker.crash()
    began = time.monotonic()
    broker.start()
    return {
        "queued_lost": queued,
        "unacked_lost": unacked,
        "workers_paused": len(paused),
        "seconds": round(time.monotonic() - began, 2),
    }


def flush(broker: Redis | RabbitMQ, cluster: Cluster, stop: threading.Event) -> dict[str, Any]:
    """FLUSHALL: every queued message, and the queue bindings, vanish from a running broker."""
    queued, unacked = _wait_for_queued(broker, 1.0, stop)
    paused = [] if queued else _pause_workers(cluster)
    try:
        if paused:
            queued, unacked = _wait_for_queued(broker, 5.0, stop)
        broker.flush()
    finally:
        _resume(paused)
    return {"queued_lost": queued, "unacked_lost": unacked, "workers_paused": len(paused)}


def _wait_for_queued(broker: Redis | RabbitMQ, seconds: float, stop: threading.Event) -> tuple[int, int]:
    """(messages waiting in the broker's queues, messages delivered but not yet acknowledged), once some wait."""
    queued, unacked = broker.queued()
    deadline = time.monotonic() + seconds
    while not queued and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.005)
        queued, unacked = broker.queued()
    return queued, unacked


def _pause_workers(cluster: Cluster) -> list[int]:
    """SIGSTOP every worker's main process (ours, by pid): they stop taking messages."""
    paused = []
    for worker in cluster.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGSTOP)
            paused.append(worker.pid)
    return paused


def _resume(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
