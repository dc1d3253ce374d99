"""The Celery workers of a harness run: start them, find their pool processes, kill and restart them by pid."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.processes import CeleryWorker

#: As durable_django names lease owners: ``host:pid:namespace:boot:started``.
HOST = socket.gethostname()


class Cluster:
    """``workers`` Celery workers of ``concurrency`` prefork processes each, all on the default queue."""

    def __init__(self, env: dict[str, str], log_dir: Path, *, workers: int, concurrency: int) -> None:
        self.workers = [
            CeleryWorker(
                "chaos.celery_app",
                {**env, "CHAOS_ROLE": "worker"},
                log_dir / f"worker-{index}",
                queues="celery",
                concurrency=concurrency,
            )
            for index in range(workers)
        ]
        self.restarts = 0
        #: Workers that exited on their own (restarted by the supervisor): (index, exit code, last error line).
        self.exits: list[dict[str, Any]] = []
        self._locks = {id(worker): threading.Lock() for worker in self.workers}

    @contextlib.contextmanager
    def holding(self, worker: CeleryWorker) -> Iterator[None]:
        """Keep the supervisor away from ``worker`` while the injector kills and restarts it."""
        with self._locks[id(worker)]:
            yield

    def supervise(self, stop: threading.Event, record: Any) -> None:
        """Restart any worker that exited on its own, as systemd's ``Restart=always`` would; record why it left."""
        while not stop.wait(0.5):
            for index, worker in enumerate(self.workers):
                with self._locks[id(worker)]:
                    if worker.process is None or worker.process.poll() is None or stop.is_set():
                        continue
                    code = worker.process.returncode
                    reason = _last_error(worker)
                    worker.kill()  # whatever is left of its process group
                    self.exits.append({"worker": index, "exit_code": code, "reason": reason})
                    record("worker_exited", worker=index, exit_code=code, reason=reason)
                    try:
                        worker.start(timeout=60)
                    except RuntimeError as error:
                        record("worker_restart_failed", worker=index, error=str(error)[-500:])

    def start(self) -> None:
        for worker in self.workers:
            worker.start(timeout=60)

    def alive(self) -> list[CeleryWorker]:
        return [worker for worker in self.workers if worker.process is not None and worker.process.poll() is None]

    def pool(self) -> dict[int, CeleryWorker]:
        """Every live pool process, with the worker it belongs to."""
        return {pid: worker for worker in self.alive() for pid in worker.children()}

    def owned_pids(self) -> set[int]:
        """Every process of every worker (main and pool): the only ones the injector may signal."""
        pids = set(self.pool())
        pids.update(worker.pid for worker in self.alive())
        return pids

    def stop(self) -> None:
        """Warm shutdown of each worker, then SIGKILL of whatever is left of its process group."""
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop(timeout=10)
        for worker in self.workers:
            worker.kill()

    def logs(self) -> str:
        return "\n".join(worker.logs() for worker in self.workers)

    @staticmethod
    def owner(pid: int) -> str:
        """What a lease's owner starts with when process ``pid`` of this host holds it."""
        return f"{HOST}:{pid}:"

    @staticmethod
    def pid_of(owner: str) -> int | None:
        from durable_django.store.owners import Owner

        parsed = Owner.parse(owner)
        return None if parsed is None or parsed.host != HOST else parsed.pid


def _last_error(worker: CeleryWorker) -> str:
    logs = sorted(worker.log_dir.glob("worker-*.log"), key=lambda path: path.stat().st_mtime)
    if not logs:
        return ""
    lines = logs[-1].read_text(errors="replace").splitlines()
    for marker in ("Unrecoverable error", "CRITICAL", "Error"):
        for line in reversed(lines):
            if marker in line:
                return line[line.index(marker) :][:300]
    return lines[-1][-300:] if lines else ""


def environment(**values: str) -> dict[str, str]:
    """The worker environment: this process's, with the chaos project's settings."""
    env = dict(os.environ)
    env.update(values)
    env["DJANGO_SETTINGS_MODULE"] = "chaos.settings"
    return env
