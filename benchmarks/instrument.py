"""Profiling hooks for the worker's pool processes, off unless ``BENCH_PROFILE_DIR`` is set.

Each pool process then runs under cProfile and counts every SQL statement Django sends
(by statement text, with its time). On SIGUSR2 it writes both to ``BENCH_PROFILE_DIR``;
``benchmarks.run --profile`` sends that signal before stopping the worker, because pool
processes are not guaranteed to run any hook when the worker shuts them down.
"""

from __future__ import annotations

import cProfile
import json
import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from celery import signals

__all__ = ["connect"]

_profiler: cProfile.Profile | None = None
_statements: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0])


def _count_statement(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        entry = _statements[" ".join(sql.split())]
        entry[0] += 1
        entry[1] += time.perf_counter() - started


def _dump(signum: int, frame: FrameType | None) -> None:
    directory = Path(os.environ["BENCH_PROFILE_DIR"])
    if _profiler is not None:
        _profiler.disable()
        _profiler.dump_stats(directory / f"child-{os.getpid()}.pstats")
        _profiler.enable()
    statements = {sql: {"count": count, "seconds": seconds} for sql, (count, seconds) in _statements.items()}
    (directory / f"child-{os.getpid()}.sql.json").write_text(json.dumps(statements, indent=1))


def _start_in_child(**_: Any) -> None:
    global _profiler
    from django.db import connections

    connections["default"].execute_wrappers.append(_count_statement)
    signal.signal(signal.SIGUSR2, _dump)
    _profiler = cProfile.Profile()
    _profiler.enable()


def connect(app: Any) -> None:
    """Install the hooks when the worker was started with ``BENCH_PROFILE_DIR``."""
    if os.environ.get("BENCH_PROFILE_DIR"):
        signals.worker_process_init.connect(_start_in_child, weak=False, dispatch_uid="benchmarks.profile")
