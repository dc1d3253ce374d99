"""``make fuzz``'s world: its own test database, the broker, and a Celery worker it SIGKILLs at random.

The worker is ``tests.celery_app`` (prefork, 2 pool processes), pointed at this database
and broker as ``tests/conftest.py``'s ``worker_env`` does, with ``CONFORMANCE_JOURNAL`` set
so its steps and workflow code report to a file. Kills come at random moments while work
is under way: a pool process (the worker replaces it; a sweeper reclaims its lease), or
the whole worker (restarted at once; its prefetched messages are lost and republished);
now and then the worker is restarted gracefully instead (SIGTERM: it finishes what it runs).
Each of these also loses the generators the killed processes held.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test.utils import setup_databases, teardown_databases

from tests.support.processes import CeleryWorker

from .journal import ENV
from .workflows import STEP_SECONDS


class Database:
    """A fresh test database (the name ``TEST_DB_NAME`` in the settings gives it), dropped at the end."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self._old: Any = setup_databases(verbosity=0, interactive=False, keepdb=False)

    def env(self) -> dict[str, str]:
        database = connection.settings_dict
        broker = {"CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
        if connection.vendor == "sqlite":
            return {"SQLITE_PATH": str(database["NAME"]), "TEST_DATABASE": "sqlite", **broker}
        url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        return {"DATABASE_URL": url, "TEST_DATABASE": "postgres", **broker}

    def drop(self) -> None:
        if not self.keep:
            connection.close()
            teardown_databases(self._old, verbosity=0)


class Killer:
    """The worker, and the faults: SIGKILL a pool process or the whole worker every few seconds."""

    def __init__(self, env: dict[str, str], log_dir: Path, journal: Path, rng: random.Random, kills: bool) -> None:
        # The broker is not flushed: it may be shared, and a message left from an earlier run names a
        # work item of a database that is gone, which a worker reads as nothing to do.
        env = {**env, ENV: str(journal), STEP_SECONDS: "0.03"}
        self.worker = CeleryWorker("tests.celery_app", env, log_dir, queues="celery")
        self.rng = rng
        self.kills = kills
        self.pool_kills = 0
        self.worker_kills = 0
        self.restarts = 0
        self.next_kill = self._later()
        try:
            self.worker.start()
        except BaseException:  # interrupted while it starts: never leave a worker behind
            self.worker.kill()
            raise

    def _later(self) -> float:
        return time.monotonic() + self.rng.uniform(0.5, 4.0)

    def tick(self, work_under_way: bool) -> None:
        """Kill something if it is time and there is work to interrupt."""
        if not self.kills or time.monotonic() < self.next_kill or not work_under_way:
            return
        self.next_kill = self._later()
        roll = self.rng.random()
        if roll < 0.55:
            children = self.worker.children()
            if children and self.worker.kill_child(self.rng.choice(children)):
                self.pool_kills += 1
                return
        if roll > 0.9:
            self.worker.stop()
            self.restarts += 1
        else:
            self.worker.kill()
            self.worker_kills += 1
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    @property
    def killed(self) -> int:
        return self.pool_kills + self.worker_kills


def default_database_name() -> str:
    """The fuzz's own database: this session's test database name with ``_fuzz`` added."""
    return os.environ.get("TEST_DB_NAME", "durable_django_test") + "_fuzz"
