"""The orchestrator: start everything, run the workload under faults, drain, check, report, stop everything.

``python -m chaos --profile full|smoke [--seed N] [--report path.json] [--workflows N]``

Exit status: 0 PASSED, 1 FAILED (an invariant broke), 2 INCONCLUSIVE (faults did not land,
or the harness itself had trouble), 130 interrupted. Artifacts (worker, PostgreSQL, Redis
and API logs, the ledger, ``timeline.jsonl``, ``report.json``) stay in
``var/chaos/<time>-<profile>-seed<seed>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import platform
import random
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import report as reporting
from .profiles import COMPOSED_FIGURES, PROFILES, Profile
from .services import ROOT, FakeApi, Postgres, RabbitMQ, Redis, free_port

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
    def __init__(self, profile: Profile, seed: int, run_dir: Path, broker: str = "redis") -> None:
        self.profile = profile
        self.seed = seed
        self.run_dir = run_dir
        self.broker_kind = broker
        self.postgres: Postgres | None = None
        self.broker: Redis | RabbitMQ | None = None
        self.api: FakeApi | None = None
        self.cluster: Any = None
        self.workload: Any = None
        self.composed: Any = None
        self.injector: Any = None
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
        self.cluster = Cluster(env, self.run_dir, workers=self.profile.workers, concurrency=self.profile.concurrency)
        self.cluster.start()
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
        from .composed import ComposedDriver, make_composed_plans
        from .injector import Injector, Timeline
        from .workload import Workload, make_plans

        plans = make_plans(self.profile.workflows, self.seed, self.profile.start_window)
        timeline = Timeline(self.run_dir / "timeline.jsonl")
        self.workload = workload = Workload(plans, self.seed, timeline)
        workload.t0 = timeline.t0
        composed_plans = make_composed_plans(self.profile.composed, self.seed, self.profile.start_window)
        self.composed = composed = ComposedDriver(composed_plans, timeline.t0)
        assert self.postgres and self.broker and self.api
        self.injector = injector = Injector(
            self.profile, self.seed, self.cluster, self.postgres, self.broker, self.api, timeline, self.run_dir
        )
        drained = threading.Event()
        self.supervising = threading.Event()
        self.threads = [
            threading.Thread(
                target=self.cluster.supervise, args=(self.supervising, timeline.record), name="supervisor", daemon=True
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
        started = lambda: workload.starts_done.is_set() and composed.done.is_set() and injector.finished.is_set()  # noqa: E731
        while not started():
            self._progress(timeline.now())
            self._sleep(10, until=started)
            if time.monotonic() > limit:
                raise RuntimeError("the workload or the injector did not finish in time")
        self.seconds["workload"] = round(time.monotonic() - began, 2)
        logger.info("faults off at t=%.1f s; draining", timeline.now())
        began = time.monotonic()
        deadline = began + self.profile.drain_timeout
        while time.monotonic() < deadline and not self._drained():
            self._sleep(2, until=lambda: False)
        drained.set()
        self.seconds["drain"] = round(time.monotonic() - began, 2)
        self._progress(timeline.now())
        self.supervising.set()
        for thread in self.threads:
            thread.join(timeout=30)
        began = time.monotonic()
        self.cluster.stop()
        assert self.api is not None
        self.api.stop()
        from .checker import check

        result = check(
            plans, self.api.ledger, injector.last_fault_wall, self.profile.liveness_bound, composed=composed_plans
        )
        self.seconds["check"] = round(time.monotonic() - began, 2)
        return self._report(result, plans, timeline)

    def _sleep(self, seconds: float, until: Any) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            time.sleep(0.1)

    def _counts(self) -> Counter[str]:
        from django.db import connection
        from django.db.models import Count

        from durable_django.models import WorkflowRun, WorkItem

        counts: Counter[str] = Counter(
            dict(
                WorkflowRun.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
            )
        )
        counts["work_items"] = WorkItem.objects.count()
        connection.close()
        return counts

    def _drained(self) -> bool:
        from django.db import DatabaseError, connection

        from durable_django.models import WorkflowRun

        try:
            counts = self._counts()
        except DatabaseError:
            connection.close()
            return False
        live = sum(counts[status] for status in WorkflowRun.LIVE)
        committed = sum(1 for plan in self.workload.plans if plan.outcome == "committed")
        committed += sum(1 for plan in self.composed.plans if plan.outcome == "committed")
        runs = sum(counts[status] for status in (*WorkflowRun.LIVE, *WorkflowRun.FINISHED, "blocked"))
        pending = self.workload.pending_actions() + self.composed.pending_actions()
        return not live and runs >= committed and not counts["work_items"] and not pending

    def _progress(self, t: float) -> None:
        from django.db import DatabaseError, connection

        try:
            counts = self._counts()
        except DatabaseError:
            connection.close()
            logger.info("t=%5.0fs  (database unavailable)", t)
            return
        started = sum(1 for plan in self.workload.plans if plan.outcome != "planned")
        done = sum(counts[status] for status in ("completed", "failed", "cancelled"))
        faults = self.injector.counts
        logger.info(
            "t=%5.0fs  started %d/%d  finished %d  live %d  items %d | kills %d  terminations %d  pg %d  broker %d",
            t,
            started,
            len(self.workload.plans),
            done,
            sum(counts[status] for status in ("pending", "running", "waiting")),
            counts["work_items"],
            faults["worker_kills_landed"],
            faults["terminations_landed"],
            faults["pg_restarts"],
            faults["broker_restarts"] + faults["broker_flushes"],
        )

    # Reporting.
    def _report(self, result: dict[str, Any], plans: list[Any], timeline: Any) -> dict[str, Any]:
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
        for stop in (
            lambda: self.cluster and self.cluster.stop(),
            lambda: self.api and self.api.stop(),
            lambda: self._close_database(),
            lambda: self.broker and self.broker.stop(),
            lambda: self.postgres and self.postgres.stop(),
            lambda: self.postgres and self.postgres.cleanup(),
            lambda: self.broker and self.broker.cleanup(),
        ):
            try:
                stop()
            except Exception:
                logger.exception("while stopping")

    @staticmethod
    def _close_database() -> None:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Overtime(Exception):
    """The whole run took longer than its hard limit."""


def _overtime(signum: int, frame: Any) -> None:
    raise Overtime("the run exceeded its hard time limit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    parser.add_argument("--seed", type=int, default=None, help="the schedule and the workload follow from it")
    parser.add_argument("--report", default=None, help="where to write the JSON report (default: in the run folder)")
    parser.add_argument("--workflows", type=int, default=None, help="override the profile's number of workflows")
    parser.add_argument("--composed", type=int, default=None, help="override the profile's composed workflows")
    parser.add_argument(
        "--broker",
        choices=["redis", "rabbitmq"],
        default="redis",
        help="redis: a server of its own; rabbitmq: a vhost of its own on the RabbitMQ at 127.0.0.1:5672",
    )
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    if args.workflows:
        profile = dataclasses.replace(profile, workflows=args.workflows)
    if args.composed is not None:
        profile = dataclasses.replace(profile, composed=args.composed)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / "var" / "chaos" / f"{stamp}-{profile.name}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    report_path = Path(args.report).resolve() if args.report else run_dir / "report.json"
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout), logging.FileHandler(run_dir / "harness.log")],
    )
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    signal.signal(signal.SIGALRM, _overtime)
    # A hard limit on the whole run, whatever hangs: the start window, the faults, the drain and ten minutes.
    signal.alarm(int(profile.start_window + profile.fault_end + profile.drain_timeout + 600))
    logger.info("chaos profile %s, seed %d, broker %s, artifacts in %s", profile.name, seed, args.broker, run_dir)
    harness = Harness(profile, seed, run_dir, args.broker)
    began = time.monotonic()
    report: dict[str, Any] | None = None
    try:
        report = harness.run()
    except KeyboardInterrupt:
        logger.warning("interrupted: stopping everything this harness started")
        return 130
    except Exception:
        logger.exception("the harness failed")
        return 3
    finally:
        signal.alarm(0)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(number, signal.SIG_IGN)
        with contextlib.suppress(KeyboardInterrupt, Overtime):
            harness.shutdown()
        if report is not None:
            report["seconds"]["total"] = round(time.monotonic() - began, 2)
            report["report_path"] = str(report_path)
            reporting.write(report, report_path)
            print(reporting.summary(report), flush=True)
    return reporting.EXIT_CODES[report["verdict"]]
