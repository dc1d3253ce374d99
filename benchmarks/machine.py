"""How busy the machine is with work that is not ours (Linux /proc).

The benchmark shares two cores with whatever else runs; another test suite running at the
same time can halve every figure. So each measurement waits for a quiet machine first,
and reports the CPU that other processes used during it: all processes' CPU time (from
``/proc/stat``) minus ours, so that processes that started and exited inside the window
(another suite's short-lived workers) count too. Counting only the processes alive at
both ends saw 2 % where ours were a third of a busy machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuWatch", "Usage", "machine_busy", "wait_quiet"]

TICKS = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


def _busy_ticks() -> int:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle


def _process_ticks() -> int:
    """CPU ticks spent in processes, kernel threads included: user, nice and system, not interrupts or steal."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[0] + fields[1] + fields[2]


def machine_busy(seconds: float = 0.5) -> float:
    """Fraction of all CPUs busy over ``seconds``."""
    start = _busy_ticks()
    time.sleep(seconds)
    return (_busy_ticks() - start) / (seconds * TICKS * CPUS)


def wait_quiet(threshold: float, timeout: float, say: Callable[[str], None]) -> float:
    """Wait (at most ``timeout`` s) until less than ``threshold`` of the CPUs are busy; return the last reading."""
    deadline = time.monotonic() + timeout
    busy = machine_busy()
    if busy < threshold:
        return busy
    say(f"  machine {busy:.0%} busy with other work; waiting up to {timeout:g} s for it to calm down")
    while busy >= threshold and time.monotonic() < deadline:
        busy = machine_busy(1.0)
    if busy >= threshold:
        say(f"  still {busy:.0%} busy; measuring anyway (see 'other CPU' in the results)")
    return busy


def _processes() -> dict[int, tuple[int, int, str, int]]:
    """pid -> (process group, CPU ticks used, command line, start time) of every user-space process.

    A process is known again by its pid and start time, not its command line: a PostgreSQL
    backend's changes with every statement (``... idle``, ``... SELECT``).
    """
    table: dict[int, tuple[int, int, str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if not cmdline:
            continue  # kernel threads
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[2]), int(fields[11]) + int(fields[12]), cmdline, int(fields[19]))
    return table


class CpuWatch:
    """CPU used during a window by processes that are neither ours nor shared services.

    Ours: this driver, the worker's process group, and PostgreSQL backends of the benchmark
    database. Shared (not counted either way): redis-server and PostgreSQL's own background
    processes.
    """

    def __init__(self, dbname: str, worker_group: int) -> None:
        self.marker = f" {dbname} "
        self.worker_group = worker_group
        self.start_time = time.monotonic()
        self.start_busy = _busy_ticks()
        self.start_process = _process_ticks()
        self.before = _processes()

    def _foreign(self, pid: int, group: int, cmdline: str) -> bool:
        if pid == os.getpid() or group == self.worker_group or self.marker in cmdline:
            return False
        if "redis-server" in cmdline:
            return False
        if cmdline.startswith("postgres:") and "(" not in cmdline and "[local]" not in cmdline:
            return False  # checkpointer, walwriter, autovacuum, ...
        return not cmdline.startswith("/usr/lib/postgresql/")  # the postmaster

    def read(self) -> Usage:
        """CPU use since the watch began."""
        busy = _busy_ticks() - self.start_busy
        processes = _process_ticks() - self.start_process
        elapsed = time.monotonic() - self.start_time
        foreign = ours = 0
        for pid, (group, ticks, cmdline, started) in _processes().items():
            earlier = self.before.get(pid)
            used = ticks - (earlier[1] if earlier and earlier[3] == started else 0)
            if self._foreign(pid, group, cmdline):
                foreign += used
            else:
                ours += used
        # Ours live through the window; other processes may not: what ours did not use, others did.
        other = max(foreign, processes - ours)
        capacity = max(elapsed * TICKS * CPUS, 1)
        return Usage(busy=busy / capacity, other=other / capacity, own_seconds=max(busy - other, 0) / TICKS)


@dataclass(frozen=True, slots=True)
class Usage:
    #: Fraction of all CPUs busy (anything).
    busy: float
    #: Fraction of all CPUs used by foreign processes: all processes' time minus ours (which live through the window).
    other: float
    #: CPU seconds used by everything else: our driver, worker, PostgreSQL and Redis work.
    own_seconds: float
