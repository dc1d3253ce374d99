"""The orchestrator: start everything, run the workload under faults, drain, check, report, stop everything.

``Harness`` does it for one profile and seed; the command line around it is chaos/cli.py.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import report as reporting
from .profiles import COMPOSED_FIGURES, Profile
from .services import FakeApi, Postgres, RabbitMQ, Redis, free_port

if TYPE_CHECKING:  # imported once Django is set up
    from .cluster import Cluster
    from .composed import ComposedDriver
    from .injector import Injector
    from .timeline import Timeline
    from .workload import OrderPlan, Workload

logger = logging.getLogger("chaos")
DATABASE = "chaos"
#: Environment variables Celery reads before its settings (celery.app.utils.Settings).
INHERITED_CELERY_URLS = (
    "CELERY_BROKER_URL",
    "CELERY_BROKER_READ_URL",
    "CELERY_BROKER_WRITE_URL",
    "CELERY_RESULT_BACKEND",
)


class Harness:
    """One run of the harness: its services, workers, workload and injector, and the report they come to."""

    def __init__(self, profile: Profile, seed: int, run_dir: Path, broker: str = "redis") -> None:
        self.profile = profile
        self.seed = seed
        self.run_dir = run_dir
        self.broker_kind = broker
        self.postgres: Postgres | None = None
        self.broker: Redis | RabbitMQ | None = None
        self.api: FakeApi | None = None
        self.cluster: Cluster | None = None
        self.workload: Workload | None = None
        self.composed: ComposedDriver | None = None
        self.injector: Injector | None = None
        self.threads: list[threading.Thread] = []
        self.supervising = threading.Event()
        self.seconds: dict[str, float] = {}
        self.versions: dict[str, str] = {}

    # Setting up.
    def start_services(self) -> None:
        began = time.monotonic()
        self.postgres = Postgres(free_port(), self.run_dir)
        self.postgres.init()
        self.postgres.start()
        self._create_database()
        if self.broker_kind == "rabbitmq":  # a vhost of its own on the machine's server
            self.broker = RabbitMQ(f"chaos-{self.run_dir.name}", self.run_dir)
        else:
            self.broker = Redis(free_port(), self.run_dir)
        self.broker.start()
        port = str(self.broker.port) if isinstance(self.broker, Redis) else "0"
        self.api = FakeApi(
            free_port(), self.run_dir / "ledger.sqlite3", self.run_dir, self.profile.api_faults, self.seed
        )
        self.api.start()
        # Celery prefers these variables to the settings: inherited (say from a test run's shell), they
        # would point the harness and its workers at another broker, which no broker fault reaches.
        for name in INHERITED_CELERY_URLS:
            os.environ.pop(name, None)
        os.environ.update(
            DJANGO_SETTINGS_MODULE="chaos.settings",
            CHAOS_PG_PORT=str(self.postgres.port),
            CHAOS_PG_DB=DATABASE,
            CHAOS_REDIS_PORT=port,
            CHAOS_BROKER_URL=self.broker.url,
            CHAOS_API_URL=self.api.url,
            CHAOS_DIR=str(self.run_dir),
            CHAOS_ROLE="harness",
        )
        (self.run_dir / "publish-faults.off").touch()
        import django

        django.setup()
        from django.core.management import call_command

        from . import celery_app  # noqa: F401  (the app publishes the harness's own wake-up messages)

        # The library's warnings in this process (publishes that failed while the broker was down...) go to a file.
        library = logging.getLogger("durable_django")
        library.handlers = [logging.FileHandler(self.run_dir / "harness-library.log")]
        library.setLevel(logging.WARNING)
        library.propagate = False
        call_command("migrate", verbosity=0)
        self._versions()
        from .cluster import Cluster, environment

        env = environment(
            CHAOS_PG_PORT=str(self.postgres.port),
            CHAOS_PG_DB=DATABASE,
            CHAOS_REDIS_PORT=port,
            CHAOS_BROKER_URL=self.broker.url,
            CHAOS_API_URL=self.api.url,
            CHAOS_DIR=str(self.run_dir),
            DURABLE_FAULT_PUBLISH=self.profile.publish_faults,
        )
        self.cluster = cluster = Cluster(
            env, self.run_dir, workers=self.profile.workers, concurrency=self.profile.concurrency
        )
        cluster.start()
        self.seconds["setup"] = round(time.monotonic() - began, 2)

    def _create_database(self) -> None:
        import psycopg

        assert self.postgres is not None
        with psycopg.connect(self.postgres.url("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")

    def _versions(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            self.versions["postgresql"] = cursor.fetchone()[0]
        assert self.broker is not None
        self.versions["broker"] = self.broker.version()
        import celery
        import django

        self.versions.update(python=platform.python_version(), django=django.get_version(), celery=celery.__version__)
        self.versions["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"

    # Running.
    def run(self) -> dict[str, Any]:
        self.start_services()
        from . import progress
        from .composed import ComposedDriver, make_composed_plans
        from .injector import Injector
        from .timeline import Timeline
        from .workload import Workload, make_plans

        plans = make_plans(self.profile.workflows, self.seed, self.profile.start_window)
        timeline = Timeline(self.run_dir / "timeline.jsonl")
        self.workload = workload = Workload(plans, self.seed, timeline)
        workload.t0 = timeline.t0
        composed_plans = make_composed_plans(self.profile.composed, self.seed, self.profile.start_window)
        self.composed = composed = ComposedDriver(composed_plans, timeline.t0)
        assert self.postgres and self.broker and self.api and self.cluster  # started above
        cluster = self.cluster
        self.injector = injector = Injector(
            self.profile, self.seed, cluster, self.postgres, self.broker, self.api, timeline, self.run_dir
        )
        drained = threading.Event()
        self.supervising = threading.Event()
        self.threads = [
            threading.Thread(
                target=cluster.supervise, args=(self.supervising, timeline.record), name="supervisor", daemon=True
            ),
            threading.Thread(target=workload.run_starter, name="starter", daemon=True),
            threading.Thread(target=composed.run, name="composed", daemon=True),
            threading.Thread(target=injector.run, name="injector", daemon=True),
            threading.Thread(target=workload.run_controller, args=(drained.is_set,), name="controller", daemon=True),
        ]
        for thread in self.threads:
            thread.start()
        began = time.monotonic()
        limit = began + self.profile.start_window + self.profile.fault_end + 600

        def started() -> bool:
            return workload.starts_done.is_set() and composed.done.is_set() and injector.finished.is_set()

        while not started():
            progress.log_progress(timeline.now(), workload, injector)
            self._sleep(10, until=started)
            if time.monotonic() > limit:
                raise RuntimeError("the workload or the injector did not finish in time")
        self.seconds["workload"] = round(time.monotonic() - began, 2)
        logger.info("faults off at t=%.1f s; draining", timeline.now())
        began = time.monotonic()
        deadline = began + self.profile.drain_timeout
        while time.monotonic() < deadline and not progress.drained(workload, composed):
            self._sleep(2, until=lambda: False)
        drained.set()
        self.seconds["drain"] = round(time.monotonic() - began, 2)
        progress.log_progress(timeline.now(), workload, injector)
        self.supervising.set()
        for thread in self.threads:
            thread.join(timeout=30)
        began = time.monotonic()
        cluster.stop()
        self.api.stop()
        from .checker import check

        result = check(
            plans, self.api.ledger, injector.last_fault_wall, self.profile.liveness_bound, composed=composed_plans
        )
        self.seconds["check"] = round(time.monotonic() - began, 2)
        return self._report(result, plans, timeline)

    def _sleep(self, seconds: float, until: Callable[[], bool]) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            time.sleep(0.1)

    # Reporting.
    def _report(self, result: dict[str, Any], plans: list[OrderPlan], timeline: Timeline) -> dict[str, Any]:
        assert self.injector and self.cluster and self.workload and self.composed  # set up by run()
        faults = Counter(self.injector.counts)
        published = self.injector.publish_fault_counts()
        faults["publishes_dropped"] = published["drop"]
        faults["publishes_duplicated"] = published["duplicate"]
        committed = [plan for plan in plans if plan.outcome == "committed"]
        signals = [record for plan in plans for record in plan.signals]
        workload = {
            "planned": len(plans),
            "committed": len(committed),
            "indeterminate": sum(1 for plan in committed if plan.indeterminate),
            "rolled_back": sum(1 for plan in plans if plan.outcome == "rolled_back"),
            "failed_to_start": sum(1 for plan in plans if plan.outcome == "failed_to_start"),
            "duplicate_starts": sum(1 for plan in plans if plan.duplicate_same_run is not None),
            "duplicate_starts_new_run": sum(1 for plan in plans if plan.duplicate_same_run is False),
            "paths": dict(Counter(plan.path for plan in committed)),
            "signals_committed": sum(1 for record in signals if record["outcome"] == "committed"),
            "signals_refused": sum(1 for record in signals if record["outcome"] == "refused_finished"),
            "early_signals": sum(1 for record in signals if record["early"] and record["outcome"] == "committed"),
            "double_signals": sum(
                1 for plan in plans if sum(1 for record in plan.signals if record["outcome"] == "committed") > 1
            ),
            "cancels": sum(1 for plan in plans if plan.cancel == "committed"),
        }
        composed_figures = result["figures"].get("composed", {})
        landed = {
            **faults,
            **{f"composed: {name}": composed_figures.get(name, 0) for name in COMPOSED_FIGURES},
            "api_applied_then_dropped": result["figures"]["api_applied_then_dropped"],
            "api_unavailable": result["figures"]["api_unavailable"],
            "rolled_back_starts": workload["rolled_back"],
            "duplicate_starts": workload["duplicate_starts"],
            "early_signals": workload["early_signals"],
            "double_signals": workload["double_signals"],
            "cancels": workload["cancels"],
            "late_writes_refused": self.cluster.logs().count("refused a late write"),
        }
        invariants = result["invariants"]
        if workload["duplicate_starts_new_run"]:
            invariants["phantom_runs"]["violations"] += workload["duplicate_starts_new_run"]
            invariants["phantom_runs"]["offenders"].append("a duplicate start returned a new run")
        logs = self.cluster.logs()
        harness_errors = self.workload.errors + self.composed.errors + self.injector.errors
        failed_composed = sum(1 for plan in self.composed.plans if plan.outcome == "failed_to_start")
        if failed_composed:
            harness_errors.append(f"{failed_composed} composed starts failed for good")
        if workload["failed_to_start"]:
            harness_errors.append(f"{workload['failed_to_start']} starts failed for good")
        report = {
            "profile": self.profile.name,
            "seed": self.seed,
            "verdict": None,
            "seconds": self.seconds,
            "versions": self.versions,
            "settings": dataclasses.asdict(self.profile),
            "workload": workload,
            "faults": dict(faults),
            "coverage": reporting.coverage(landed, self.profile.minimum),
            "invariants": invariants,
            "figures": result["figures"],
            "logs": {
                "refused_late_writes": logs.count("refused a late write"),
                "reclaimed_dead_owner_lines": logs.count("whose worker process died"),
                "sweeper_publish_lines": logs.count("sweeper published"),
                "worker_lost_errors": logs.count("WorkerLostError"),
                "tracebacks": logs.count("Traceback (most recent call last)"),
            },
            "worker_exits": self.cluster.exits,
            "schedule": self.injector.schedule,
            "timeline": timeline.events,
            "harness_errors": harness_errors,
            "run_dir": str(self.run_dir),
        }
        report["verdict"] = reporting.verdict(report)
        return report

    # Stopping: everything this harness started, by pid, whatever happened.
    def shutdown(self) -> None:
        if self.workload is not None:
            self.workload.stop.set()
        if self.composed is not None:
            self.composed.stop.set()
        if self.injector is not None:
            self.injector.stop.set()
            self.injector.wake_all()
        self.supervising.set()
        for thread in self.threads:
            thread.join(timeout=15)
        for stop in self._stops():
            try:
                stop()
            except Exception:
                logger.exception("while stopping")

    def _stops(self) -> list[Callable[[], None]]:
        """What stops everything this harness started, in order: workers, API, connections, broker, PostgreSQL."""
        stops: list[Callable[[], None]] = []
        if self.cluster is not None:
            stops.append(self.cluster.stop)
        if self.api is not None:
            stops.append(self.api.stop)
        stops.append(self._close_database)
        if self.broker is not None:
            stops.append(self.broker.stop)
        if self.postgres is not None:
            stops += [self.postgres.stop, self.postgres.cleanup]
        if self.broker is not None:
            stops.append(self.broker.cleanup)
        return stops

    @staticmethod
    def _close_database() -> None:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
