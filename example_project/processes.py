"""Celery worker processes that the demo, the tests and the benchmarks start, kill and stop by pid.

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

ROOT = Path(__file__).resolve().parent.parent


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
        """Pids of the pool processes, read from /proc (Linux)."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except FileNotFoundError:
            return []
        return [int(pid) for pid in text.split()]

    def kill_child(self, pid: int) -> bool:
        """SIGKILL one pool process of this worker (only one of ours)."""
        if pid not in self.children():
            return False
        os.kill(pid, signal.SIGKILL)
        return True

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool, no cleanup."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self, timeout: float = 10.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        self.kill()

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.log_dir.glob("worker-*.log")))
