"""The fault injector: a seeded schedule of faults, each aimed at a process this harness started.

Every fault is checked for having landed, or it does not count:
- a pool process killed counts if it held a step's lease when it died (the lease is still
  there, with its pid as owner, after it died) or had a transaction open just before;
- a worker's main process is killed with its pool (``killpg`` of the session it started),
  counted the same way over its pool, then started again;
- a backend terminated counts if ``pg_terminate_backend`` ended a live worker session,
  and "mid-transaction" if that session had a transaction open;
- a broker restart is "lossy" if messages were queued when the server died (Redis runs
  without persistence: they are gone);
- dropped and duplicated publishes are counted by the workers themselves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.db import DatabaseError, connection

from tests.support.processes import CeleryWorker

from . import activity, broker_faults
from .cluster import Cluster
from .profiles import Profile
from .schedule import PAUSE_SECONDS, make_schedule
from .services import FakeApi, Postgres, RabbitMQ, Redis
from .timeline import Timeline
from .workload import with_retries

T = TypeVar("T")
logger = logging.getLogger("chaos")


class Injector:
    """Acts the fault schedule out in a thread of its own; each fault's outcome goes onto the timeline."""

    #: How long a zombie stays paused (chaos/schedule.py).
    PAUSE_SECONDS = PAUSE_SECONDS

    def __init__(
        self,
        profile: Profile,
        seed: int,
        cluster: Cluster,
        postgres: Postgres,
        broker: Redis | RabbitMQ,
        api: FakeApi,
        timeline: Timeline,
        run_dir: Path,
    ) -> None:
        self.profile = profile
        self.rng = random.Random(seed + 2)
        self.cluster = cluster
        self.postgres = postgres
        self.broker = broker
        self.api = api
        self.timeline = timeline
        self.run_dir = run_dir
        self.schedule = make_schedule(profile, self.rng)
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        self.finished = threading.Event()
        self.last_fault_wall = 0.0
        self.errors: list[str] = []
        self._publish_gate = run_dir / "publish-faults.off"
        #: Paused pids, with the step items (id: token) each held when it was stopped.
        self.paused: dict[int, dict[int, int]] = {}
        #: When each paused process was woken: it is left alone for a while, to show what it does next.
        self.woken: dict[int, float] = {}

    # The thread.
    def run(self) -> None:
        try:
            self._wait_until(self.profile.fault_start)
            if self.stop.is_set():
                return
            self._publish_gate.unlink(missing_ok=True)
            self.timeline.record("publish_faults_on", spec=self.profile.publish_faults)
            for at, kind in self.schedule:
                self._wait_until(at)
                if self.stop.is_set():
                    return
                try:
                    result = getattr(self, kind)()
                except Exception as error:  # one failed injection must not end the others
                    logger.exception("fault %s failed", kind)
                    self.errors.append(f"{kind}: {type(error).__name__}: {error}")
                    result = {"error": str(error)}
                    connection.close()
                self.timeline.record(kind, **result)
                self.last_fault_wall = time.time()
            self._wait_until(self.profile.fault_end)
        finally:
            self.wake_all()
            self._publish_gate.touch()
            self._api_control(p503=0.0, pdrop=0.0)
            self.timeline.record("faults_off")
            self.last_fault_wall = time.time()
            self.finished.set()
            connection.close()

    def _wait_until(self, at: float) -> None:
        while not self.stop.is_set() and self.timeline.now() < at:
            time.sleep(0.05)

    def _api_control(self, **rates: float) -> None:
        request = urllib.request.Request(
            f"{self.api.url}/control", data=json.dumps(rates).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=3):
                pass
        except OSError as error:
            self.errors.append(f"api control: {error}")

    def _spared(self, pid: int) -> bool:
        """Paused, or woken from a pause less than 5 s ago: not to be killed."""
        return pid in self.paused or time.monotonic() - self.woken.get(pid, -1e9) < 5.0

    def _poll(self, find: Callable[[], list[T]], seconds: float) -> list[T] | None:
        deadline = time.monotonic() + seconds
        while not self.stop.is_set():
            found = with_retries(find, what="poll", deadline=time.monotonic() + 10)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.01)
        return None

    # The faults.
    def kill_child(self) -> dict[str, Any]:
        """SIGKILL one pool process, preferably one running a step or holding a transaction."""

        def busy() -> list[tuple[int, CeleryWorker, bool, int]]:
            pool = self.cluster.pool()
            leases, sessions = activity.leases(), activity.sessions()
            return [
                (pid, worker, activity.in_transaction(sessions, pid), leases[pid])
                for pid, worker in pool.items()
                if (leases[pid] or activity.in_transaction(sessions, pid)) and not self._spared(pid)
            ]

        candidates = self._poll(busy, seconds=3.0)
        if not candidates:
            self.counts["child_kills_idle_skipped"] += 1
            return {"landed": False, "why": "no pool process was busy"}
        mid_step = [candidate for candidate in candidates if candidate[3]]
        pid, worker, in_tx, _ = self.rng.choice(mid_step or candidates)
        if not worker.kill_child(pid):
            return {"landed": False, "why": f"pid {pid} was gone"}
        held = with_retries(lambda: activity.held_after_death([pid]), what="check kill", deadline=time.monotonic() + 30)
        landed = bool(held) or in_tx
        self.counts["child_kills"] += 1
        self.counts["child_kills_landed"] += landed
        self.counts["worker_kills_landed"] += landed
        self.counts["kills_mid_step"] += bool(held)
        self.counts["kills_mid_transaction"] += in_tx
        return {"pid": pid, "landed": landed, "steps_in_flight": held, "in_transaction": in_tx}

    def pause_child(self) -> dict[str, Any]:
        """SIGSTOP a pool process mid-step for longer than its lease, then SIGCONT it: a zombie executor.

        Its step is taken over by another worker once the lease runs out; when the paused
        process wakes up and reports, its write must be refused (the fencing token). One at
        a time, and only a process running an external step outside any transaction (one
        inside a transaction holds its rows locked: nobody could take over). Its database
        session is spared by the other faults, so it wakes up able to try its late write.
        """
        if self.paused:
            return {"landed": False, "why": "another process is paused"}

        def mid_step() -> list[tuple[int, CeleryWorker]]:
            leases, sessions = activity.leases(), activity.sessions()
            return [
                (pid, worker)
                for pid, worker in self.cluster.pool().items()
                if leases[pid] and not activity.in_transaction(sessions, pid) and not self._spared(pid)
            ]

        for attempt in range(1, 6):
            candidates = self._poll(mid_step, seconds=3.0)
            if not candidates:
                return {"landed": False, "why": "no pool process was running a step"}
            pid, _ = self.rng.choice(candidates)
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            # Stopped: does it still hold a step's lease, outside a transaction? (It may have moved on meanwhile.)
            held = with_retries(lambda: activity.leased_items(pid), what="check pause", deadline=time.monotonic() + 10)  # noqa: B023
            sessions = with_retries(activity.sessions, what="check pause", deadline=time.monotonic() + 10)
            if not held or activity.in_transaction(sessions, pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                continue
            self.paused[pid] = held
            items = with_retries(lambda: activity.describe(held), what="describe", deadline=time.monotonic() + 10)  # noqa: B023
            timer = threading.Timer(self.PAUSE_SECONDS, self._wake, args=(pid, held))
            timer.daemon = True
            timer.start()
            self.counts["pauses_landed"] += 1
            return {"pid": pid, "landed": True, "seconds": self.PAUSE_SECONDS, "tries": attempt, "items": items}
        return {"landed": False, "why": "every paused process had just finished its step"}

    def _wake(self, pid: int, held: dict[int, int]) -> None:
        """SIGCONT; first note whether another worker took over what it held (the item went on without it)."""
        taken_over: bool | None
        try:
            now = activity.tokens(held)
            taken_over = any(now.get(pk, token + 1) > token for pk, token in held.items())
            items = activity.describe(held)
        except DatabaseError:
            taken_over, items = None, []
        finally:
            connection.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        if self.paused.pop(pid, None) is not None:
            self.counts["pauses_taken_over"] += bool(taken_over)
            self.woken[pid] = time.monotonic()
            self.timeline.record("pause_child_woken", pid=pid, taken_over=taken_over, items=items)

    def wake_all(self) -> None:
        for pid, held in list(self.paused.items()):
            self._wake(pid, held)

    def kill_main(self) -> dict[str, Any]:
        """SIGKILL a worker's main process with its pool (its reserved messages die with it), then restart it."""
        workers = self.cluster.alive()
        if not workers:
            return {"landed": False, "why": "no worker alive"}

        def busy_worker() -> list[CeleryWorker]:
            leases, sessions = activity.leases(), activity.sessions()
            return [
                worker
                for worker in workers
                if any(leases[pid] or activity.in_transaction(sessions, pid) for pid in worker.children())
                and not any(self._spared(pid) for pid in worker.children())
            ]

        calm = [worker for worker in workers if not any(self._spared(pid) for pid in worker.children())]
        candidates = self._poll(busy_worker, seconds=3.0) or calm
        if not candidates:
            return {"landed": False, "why": "every worker has a paused pool process"}
        worker = self.rng.choice(candidates)
        pool = worker.children()
        sessions = with_retries(activity.sessions, what="sessions", deadline=time.monotonic() + 10)
        in_tx = any(activity.in_transaction(sessions, pid) for pid in pool)
        with self.cluster.holding(worker):
            if worker.process is None:
                return {"landed": False, "why": "the worker was restarting"}
            main_pid = worker.pid
            worker.kill()
            held = with_retries(
                lambda: activity.held_after_death(pool), what="check kill", deadline=time.monotonic() + 30
            )
            began = time.monotonic()
            worker.start(timeout=60)
        self.cluster.restarts += 1
        landed = bool(held) or in_tx
        self.counts["main_kills"] += 1
        self.counts["main_kills_landed"] += landed
        self.counts["worker_kills_landed"] += landed
        self.counts["kills_mid_step"] += bool(held)
        self.counts["kills_mid_transaction"] += in_tx
        return {
            "pid": main_pid,
            "pool": pool,
            "landed": landed,
            "steps_in_flight": held,
            "in_transaction": in_tx,
            "restart_seconds": round(time.monotonic() - began, 2),
        }

    def terminate_backend(self) -> dict[str, Any]:
        """``pg_terminate_backend`` of a worker session, preferably one inside a transaction."""

        def in_transaction() -> list[tuple[int, int, str]]:
            return [
                (backend, pid, state)
                for pid, session in activity.sessions().items()
                for backend, state, in_tx in session["backends"]
                if in_tx and not self._spared(pid)
            ]

        candidates = self._poll(in_transaction, seconds=2.0)
        mid_transaction = bool(candidates)
        if not candidates:
            sessions = with_retries(activity.sessions, what="sessions", deadline=time.monotonic() + 10)
            candidates = [
                (backend, pid, state) for pid, session in sessions.items() for backend, state, _ in session["backends"]
            ]
        if not candidates:
            return {"landed": False, "why": "no worker session"}
        backend, pid, state = self.rng.choice(candidates)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
            landed = bool(cursor.fetchone()[0])
        self.counts["terminations"] += 1
        self.counts["terminations_landed"] += landed
        self.counts["terminations_mid_transaction"] += landed and mid_transaction
        return {"backend": backend, "pid": pid, "state": state, "landed": landed, "mid_transaction": mid_transaction}

    def pg_restart(self) -> dict[str, Any]:
        """Restart PostgreSQL in ``immediate`` mode: every session dies, the server recovers from its WAL.

        Not while a process is paused: it would wake up with a dead session and never try the
        late write the pause is for. The restart waits for it (and a second more).
        """
        deadline = time.monotonic() + self.PAUSE_SECONDS + 2.0
        waited = bool(self.paused)
        while self.paused and not self.stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        if waited:
            time.sleep(1.0)
        sessions = with_retries(activity.sessions, what="sessions", deadline=time.monotonic() + 10)
        connection.close()
        seconds = self.postgres.restart("immediate")
        self.counts["pg_restarts"] += 1
        return {"worker_sessions": sum(len(s["backends"]) for s in sessions.values()), "seconds": round(seconds, 2)}

    def broker_restart(self, lossy: bool = False) -> dict[str, Any]:
        """Kill the broker and start it again: what it held is lost (chaos/broker_faults.py)."""
        result = broker_faults.restart(self.broker, self.cluster, self.stop, lossy=lossy)
        self.counts["broker_restarts"] += 1
        self.counts["broker_restarts_lossy"] += bool(result["queued_lost"])
        self.counts["messages_lost"] += result["queued_lost"]
        return result

    def broker_restart_lossy(self) -> dict[str, Any]:
        return self.broker_restart(lossy=True)

    def broker_flush(self) -> dict[str, Any]:
        """FLUSHALL: every queued message, and the queue bindings, vanish from a running broker."""
        result = broker_faults.flush(self.broker, self.cluster, self.stop)
        self.counts["broker_flushes"] += 1
        self.counts["messages_lost"] += result["queued_lost"]
        return result

    def publish_fault_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        log = self.run_dir / "publish-faults.log"
        if log.exists():
            for line in log.read_text().splitlines():
                counts[line.split()[0]] += 1
        return counts
