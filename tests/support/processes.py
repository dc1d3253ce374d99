"""Celery worker processes that the tests, the benchmarks, the chaos harness and the demo start, kill and stop by pid.

Each worker runs in its own session (process group), so stopping it reaches its pool
children and nothing else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class CeleryWorker:
    """One ``celery -A <app> worker`` (prefork) process tree; ``env`` selects its database and broker.

    ``env`` is added to this process's environment, or replaces it with ``inherit_env=False``
    (a project that must not see this one's ``DJANGO_SETTINGS_MODULE`` or ``CELERY_BROKER_URL``).
    ``cwd`` is where ``<app>`` is imported from.
    """

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        log_dir: Path,
        *,
        queues: str = "celery",
        concurrency: int = 2,
        cwd: Path = ROOT,
        inherit_env: bool = True,
    ) -> None:
        self.app = app
        self.env = {**os.environ, **env} if inherit_env else dict(env)
        self.cwd = cwd
        self.log_dir = log_dir
        self.queues = queues
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, "the worker is not running"
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"worker-{self.starts}.log"
        command = [
            sys.executable, "-m", "celery", "-A", self.app, "worker",
            "--pool=prefork", f"--concurrency={self.concurrency}", f"--queues={self.queues}",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
            f"--hostname=worker-{uuid.uuid4().hex[:8]}@127.0.0.1",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.process.returncode}:\n{log_path.read_text()}")
            if b" ready." in log_path.read_bytes() and len(self.children()) >= self.concurrency:
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"celery worker not ready after {timeout:g} s:\n{log_path.read_text()}")

    def children(self) -> list[int]:
        """Pids of the live pool processes, read from /proc (Linux); a killed one not yet reaped is left out."""
        if self.process is None or self.process.poll() is not None:
            return []
        pids: set[int] = set()
        for task in Path(f"/proc/{self.pid}/task").glob("*"):  # children of every thread of the main process
            with contextlib.suppress(OSError):
                pids.update(int(pid) for pid in (task / "children").read_text().split())
        return sorted(pid for pid in pids if alive(pid))

    def kill_child(self, pid: int) -> bool:
        """SIGKILL one pool process of this worker (only one of ours); returns once it is dead."""
        if pid not in self.children():
            return False
        os.kill(pid, signal.SIGKILL)
        _wait_dead([pid])
        return True

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool, no cleanup; returns once all are dead."""
        if self.process is None:
            return
        pool = self.children()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        _wait_dead(pool)

    def stop(self, timeout: float = 10.0) -> None:
        """Warm shutdown (SIGTERM to the main process, which stops its pool), then SIGKILL if it takes too long."""
        if self.process is None:
            return
        try:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=timeout)
        finally:  # also on Ctrl-C while waiting: never leave a worker behind
            self.kill()

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.log_dir.glob("worker-*.log")))


def alive(pid: int) -> bool:
    """True while ``pid`` runs: neither gone nor a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pids: list[int], timeout: float = 5.0) -> None:
    """Wait until each pid is gone or a zombie: a SIGKILLed process may run on briefly."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
