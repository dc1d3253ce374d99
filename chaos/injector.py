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
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import Q
from django.db.models.functions import Now

from .cluster import Cluster
from .profiles import Profile
from .services import FakeApi, Postgres, RabbitMQ, Redis
from .workload import with_retries

logger = logging.getLogger("chaos")


class Timeline:
    """What happened when, in seconds since the first start; also appended to ``timeline.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def record(self, kind: str, **details: Any) -> dict[str, Any]:
        event = {"t": self.now(), "wall": time.time(), "kind": kind, **details}
        with self._lock:
            self.events.append(event)
            with open(self.path, "a") as out:
                out.write(json.dumps(event, default=str) + "\n")
        return event


def make_schedule(profile: Profile, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds after the first start, fault kind), sorted; restarts spread out, the rest at random."""
    start, end = profile.fault_start, profile.fault_end
    span = end - start
    schedule: list[tuple[float, str]] = []
    for kind in ("kill_child", "kill_main", "terminate_backend"):
        schedule += [(rng.uniform(start, end), kind) for _ in range(profile.faults.get(kind, 0))]
    restarts = [start + span * rng.uniform(0.35, 0.55) for _ in range(profile.faults.get("pg_restart", 0))]
    schedule += [(at, "pg_restart") for at in restarts]
    # A paused process wakes before the faults end, and not across a PostgreSQL restart (which would end its
    # session: it could then write nothing at all, and the late write the pause is for would not be tried).
    # One pause per slot, so one wakes before the next begins (one zombie at a time).
    pauses = profile.faults.get("pause_child", 0)
    slot = (max(start + 1.0, end - Injector.PAUSE_SECONDS - 1.0) - start) / max(1, pauses)
    for index in range(pauses):
        low = start + slot * index
        high = max(low, low + slot - Injector.PAUSE_SECONDS - 1.0)
        for _ in range(100):
            at = rng.uniform(low, high)
            if not any(restart - Injector.PAUSE_SECONDS - 3.0 < at < restart + 3.0 for restart in restarts):
                break
        schedule.append((at, "pause_child"))
    broker = ["broker_restart"] * profile.faults.get("broker_restart", 0)
    broker += ["broker_restart_lossy"] * profile.faults.get("broker_restart_lossy", 0)
    broker += ["broker_flush"] * profile.faults.get("broker_flush", 0)
    rng.shuffle(broker)
    # One per slot, so they never pile up; all while orders are still being started, so messages are in flight.
    busy = max(1.0, min(end, profile.start_window - 1.0) - start)
    for index, kind in enumerate(broker):
        slot = busy / len(broker)
        schedule.append((start + slot * index + rng.uniform(0.2, 0.8) * slot, kind))
    return sorted(schedule)


class Injector:
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

    # Looking at the workers.
    def _sessions(self) -> dict[int, dict[str, Any]]:
        """Worker database sessions by OS pid: backend pid, whether a transaction is open."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, application_name, state, xact_start IS NOT NULL AND state <> 'idle' "
                "FROM pg_stat_activity WHERE application_name LIKE 'chaos-worker:%%' AND pid <> pg_backend_pid()"
            )
            rows = cursor.fetchall()
        sessions: dict[int, dict[str, Any]] = {}
        for backend, name, state, in_tx in rows:
            try:
                pid = int(name.rsplit(":", 1)[1])
            except (ValueError, IndexError):
                continue
            session = sessions.setdefault(pid, {"backends": [], "in_tx": False})
            session["backends"].append((backend, state, bool(in_tx)))
            session["in_tx"] = session["in_tx"] or bool(in_tx)
        return sessions

    def _leases(self) -> Counter[int]:
        from durable_django.models import WorkItem

        owners = WorkItem.objects.filter(kind=WorkItem.Kind.STEP, lease_expires_at__gt=Now()).values_list(
            "owner", flat=True
        )
        leased: Counter[int] = Counter()
        for owner in owners:
            pid = Cluster.pid_of(owner)
            if pid is not None:
                leased[pid] += 1
        return leased

    def _held_after_death(self, pids: list[int]) -> int:
        """Step leases still held by these (dead) processes: they died holding them."""
        from durable_django.models import WorkItem

        held = Q()
        for pid in pids:
            held |= Q(owner__startswith=Cluster.owner(pid))
        return WorkItem.objects.filter(held, kind=WorkItem.Kind.STEP, lease_expires_at__isnull=False).count()

    def _poll(self, find: Callable[[], Any], seconds: float) -> Any:
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

        def busy() -> list[tuple[int, Any, bool, int]]:
            pool = self.cluster.pool()
            leases, sessions = self._leases(), self._sessions()
            return [
                (pid, worker, sessions.get(pid, {}).get("in_tx", False), leases[pid])
                for pid, worker in pool.items()
                if (leases[pid] or sessions.get(pid, {}).get("in_tx")) and not self._spared(pid)
            ]

        candidates = self._poll(busy, seconds=3.0)
        if not candidates:
            self.counts["child_kills_idle_skipped"] += 1
            return {"landed": False, "why": "no pool process was busy"}
        mid_step = [candidate for candidate in candidates if candidate[3]]
        pid, worker, in_tx, _ = self.rng.choice(mid_step or candidates)
        if not worker.kill_child(pid):
            return {"landed": False, "why": f"pid {pid} was gone"}
        held = with_retries(lambda: self._held_after_death([pid]), what="check kill", deadline=time.monotonic() + 30)
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

        def mid_step() -> list[tuple[int, Any]]:
            leases, sessions = self._leases(), self._sessions()
            return [
                (pid, worker)
                for pid, worker in self.cluster.pool().items()
                if leases[pid] and not sessions.get(pid, {}).get("in_tx") and not self._spared(pid)
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
            held = with_retries(lambda: self._leased_items(pid), what="check pause", deadline=time.monotonic() + 10)  # noqa: B023
            sessions = with_retries(self._sessions, what="check pause", deadline=time.monotonic() + 10)
            if not held or sessions.get(pid, {}).get("in_tx"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                continue
            self.paused[pid] = held
            items = with_retries(lambda: self._describe(held), what="describe", deadline=time.monotonic() + 10)  # noqa: B023
            timer = threading.Timer(self.PAUSE_SECONDS, self._wake, args=(pid, held))
            timer.daemon = True
            timer.start()
            self.counts["pauses_landed"] += 1
            return {"pid": pid, "landed": True, "seconds": self.PAUSE_SECONDS, "tries": attempt, "items": items}
        return {"landed": False, "why": "every paused process had just finished its step"}

    #: Longer than a step's lease (its 5 s timeout plus the 1 s grace) plus the sweeper's republish delay,
    #: so another worker takes the step over while this one sleeps.
    PAUSE_SECONDS = 15.0

    def _leased_items(self, pid: int) -> dict[int, int]:
        from durable_django.models import WorkItem

        return dict(
            WorkItem.objects.filter(
                kind=WorkItem.Kind.STEP, owner__startswith=Cluster.owner(pid), lease_expires_at__gt=Now()
            ).values_list("pk", "token")
        )

    @staticmethod
    def _describe(held: dict[int, int]) -> list[dict[str, Any]]:
        from durable_django.models import HistoryEntry, WorkItem

        described = []
        for item in WorkItem.objects.filter(pk__in=list(held)).select_related("run"):
            entry = (  # a step's item always has a seq; a seq of None would find no entry either
                None
                if item.seq is None
                else HistoryEntry.objects.filter(run_id=item.run_id, seq=item.seq).values("name", "status").first()
            )
            described.append(
                {"item": item.pk, "token": item.token, "run": item.run.workflow_id, "seq": item.seq, "entry": entry}
            )
        return described

    def _wake(self, pid: int, held: dict[int, int]) -> None:
        """SIGCONT; first note whether another worker took over what it held (the item went on without it)."""
        from durable_django.models import WorkItem

        try:
            now = dict(WorkItem.objects.filter(pk__in=list(held)).values_list("pk", "token"))
            taken_over = any(now.get(pk, token + 1) > token for pk, token in held.items())
            items = self._describe(held)
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

        def busy_worker() -> list[Any]:
            leases, sessions = self._leases(), self._sessions()
            return [
                worker
                for worker in workers
                if any(leases[pid] or sessions.get(pid, {}).get("in_tx") for pid in worker.children())
                and not any(self._spared(pid) for pid in worker.children())
            ]

        calm = [worker for worker in workers if not any(self._spared(pid) for pid in worker.children())]
        candidates = self._poll(busy_worker, seconds=3.0) or calm
        if not candidates:
            return {"landed": False, "why": "every worker has a paused pool process"}
        worker = self.rng.choice(candidates)
        pool = worker.children()
        sessions = with_retries(self._sessions, what="sessions", deadline=time.monotonic() + 10)
        in_tx = any(sessions.get(pid, {}).get("in_tx") for pid in pool)
        with self.cluster.holding(worker):
            if worker.process is None:
                return {"landed": False, "why": "the worker was restarting"}
            main_pid = worker.pid
            worker.kill()
            held = with_retries(lambda: self._held_after_death(pool), what="check kill", deadline=time.monotonic() + 30)
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
                for pid, session in self._sessions().items()
                for backend, state, in_tx in session["backends"]
                if in_tx and not self._spared(pid)
            ]

        candidates = self._poll(in_transaction, seconds=2.0)
        mid_transaction = bool(candidates)
        if not candidates:
            sessions = with_retries(self._sessions, what="sessions", deadline=time.monotonic() + 10)
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
        sessions = with_retries(self._sessions, what="sessions", deadline=time.monotonic() + 10)
        connection.close()
        seconds = self.postgres.restart("immediate")
        self.counts["pg_restarts"] += 1
        return {"worker_sessions": sum(len(s["backends"]) for s in sessions.values()), "seconds": round(seconds, 2)}

    def _queued(self) -> tuple[int, int]:
        """(messages waiting in the broker's queues, messages delivered but not yet acknowledged)."""
        return self.broker.queued()

    def broker_restart(self, lossy: bool = False) -> dict[str, Any]:
        """Kill the broker and start it again: what it held is lost (no Redis persistence; a deleted vhost)."""
        queued, unacked = self._wait_for_queued(1.0 if lossy else 0.0)
        paused: list[int] = []
        if lossy and not queued:  # the workers keep up: stall them (SIGSTOP) until messages wait in the broker
            paused = self._pause_workers()
            try:
                queued, unacked = self._wait_for_queued(5.0)
                self.broker.crash()
            finally:
                self._resume(paused)
        else:
            self.broker.crash()
        began = time.monotonic()
        self.broker.start()
        self.counts["broker_restarts"] += 1
        self.counts["broker_restarts_lossy"] += bool(queued)
        self.counts["messages_lost"] += queued
        return {
            "queued_lost": queued,
            "unacked_lost": unacked,
            "workers_paused": len(paused),
            "seconds": round(time.monotonic() - began, 2),
        }

    def _wait_for_queued(self, seconds: float) -> tuple[int, int]:
        queued, unacked = self._queued()
        deadline = time.monotonic() + seconds
        while not queued and time.monotonic() < deadline and not self.stop.is_set():
            time.sleep(0.005)
            queued, unacked = self._queued()
        return queued, unacked

    def _pause_workers(self) -> list[int]:
        """SIGSTOP every worker's main process (ours, by pid): they stop taking messages."""
        paused = []
        for worker in self.cluster.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGSTOP)
                paused.append(worker.pid)
        return paused

    @staticmethod
    def _resume(pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def broker_restart_lossy(self) -> dict[str, Any]:
        return self.broker_restart(lossy=True)

    def broker_flush(self) -> dict[str, Any]:
        """FLUSHALL: every queued message, and the queue bindings, vanish from a running broker."""
        queued, unacked = self._wait_for_queued(1.0)
        paused = [] if queued else self._pause_workers()
        try:
            if paused:
                queued, unacked = self._wait_for_queued(5.0)
            self.broker.flush()
        finally:
            self._resume(paused)
        self.counts["broker_flushes"] += 1
        self.counts["messages_lost"] += queued
        return {"queued_lost": queued, "unacked_lost": unacked, "workers_paused": len(paused)}

    def publish_fault_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        log = self.run_dir / "publish-faults.log"
        if log.exists():
            for line in log.read_text().splitlines():
                counts[line.split()[0]] += 1
        return counts


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        connection.close()
        return False
