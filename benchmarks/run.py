"""``make bench``: durable_django against a plain Celery chain and DBOS Transact, on PostgreSQL and Redis.

Creates (or resets) dedicated databases, starts a real prefork Celery worker (or DBOS's
processes) for every measurement, then many sleeping workflows, and prints medians, ratios
against the baselines measured in the same run, and where the raw numbers went.
``python -m benchmarks.run --help`` lists the options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Throughput, latency and PostgreSQL commits per step: durable_django vs a Celery chain and DBOS.",
        epilog="Through make: make bench BENCH_ARGS='--quick'. What is measured and how: docs/performance.md.",
    )
    parser.add_argument("--workflows", type=int, default=200, help="workflows (and chains) per burst (default 200)")
    parser.add_argument("--steps", type=int, default=10, help="steps per workflow and tasks per chain (default 10)")
    parser.add_argument("--mid-workflows", type=int, default=20, help="workflows of the 100-step scenario (20)")
    parser.add_argument("--mid-steps", type=int, default=100, help="steps of each of those (default 100)")
    parser.add_argument("--long-workflows", type=int, default=4, help="long workflows in the per-step test (4)")
    parser.add_argument("--long-steps", type=int, default=1000, help="steps of each long workflow (default 1000)")
    parser.add_argument(
        "--sleepers", type=int, default=50_000, help="sleeping workflows started at the end (50000; 0: none)"
    )
    parser.add_argument(
        "--large-sleepers",
        type=int,
        default=0,
        help="then this many more, of which --large-sleepers-due come due (0, the default: none; the issue's "
        "1000000 takes about half an hour)",
    )
    parser.add_argument(
        "--large-sleepers-due", type=int, default=50_000, help="of the large sleepers, how many come due (50000)"
    )
    parser.add_argument(
        "--large-sleepers-within", type=float, default=1800.0, help="target, s, for all of them asleep (1800)"
    )
    parser.add_argument("--sleeper-chunk", type=int, default=500, help="sleeper starts per transaction (500)")
    parser.add_argument(
        "--sleeper-fire-rate", type=float, default=500.0, help="sleepers coming due per second, evenly spread (500)"
    )
    parser.add_argument(
        "--sleeper-start",
        choices=("bulk", "start"),
        default="bulk",
        help="start sleepers with start_many() per chunk (bulk, the default) or start() calls in one transaction",
    )
    parser.add_argument(
        "--start-rate-runs", type=int, default=2000, help="runs per mode in the starts/s measurement (2000; 0: skip)"
    )
    parser.add_argument(
        "--sleeper-idle-window", type=float, default=30.0, help="seconds of CPU measurement while all sleep (30)"
    )
    parser.add_argument(
        "--dbos-database-url",
        default="postgres://postgres@127.0.0.1:5432/dbos_bench",
        help="DBOS's own database on the same server; dropped and recreated; its name must contain 'bench'",
    )
    parser.add_argument(
        "--dbos-worker-concurrency", type=int, default=10, help="DBOS queue worker_concurrency per process (10)"
    )
    parser.add_argument(
        "--dbos-polling-interval", type=float, default=0.05, help="DBOS queue polling interval, s (0.05; DBOS: 1)"
    )
    parser.add_argument("--solo", type=int, default=10, help="workflows run one at a time after a burst (10)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the table shows medians (default 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork worker processes (default 2)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios: durable-trivial, durable-atomic, chain-default, chain-reuse, chain-nodb, "
        "dbos-1proc, dbos-2proc, durable-100, durable-long, sleepers, dbos-sleepers, large-sleepers",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run: 60 workflows, 2 long ones, 2,000 sleepers, once"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait, before each measurement, for other processes to leave the CPUs mostly idle (30)",
    )
    parser.add_argument("--idle-seconds", type=float, default=4.0, help="uptime of the idle-worker measurement")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: time a workflow in-process, and profile the pool processes (cProfile, SQL statements per step)",
    )
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/durable_bench",
        help="dropped and recreated; its name must contain 'bench'",
    )
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14", help="only this index is flushed")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results", help="where the JSON results go")
    parser.add_argument("--report", type=Path, metavar="JSON", help="print the table of an earlier run's JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.workflows, args.long_workflows, args.mid_workflows, args.solo, args.repeat = 60, 2, 6, 3, 1
        args.sleepers, args.sleeper_idle_window = min(args.sleepers, 2000), 5.0
    if not urlsplit(args.broker_url).path.strip("/").isdigit():
        parser.error("--broker-url must name a Redis database index, such as redis://127.0.0.1:6379/14")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` stops the worker it started."""
    raise KeyboardInterrupt(f"signal {signum}")


def _setup_django(args: argparse.Namespace) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DATABASE_URL"] = args.database_url
    os.environ["BENCH_BROKER_URL"] = args.broker_url
    import django

    django.setup()
    # The driver sends through the benchmark's Celery app, whichever app was created first.
    from .celery_app import app

    app.set_current()
    app.set_default()


def machine_facts(server: dict[str, str]) -> dict[str, Any]:
    from importlib.metadata import version

    cpu = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": version("django"),
        "celery": version("celery"),
        "kombu": version("kombu"),
        "psycopg": version("psycopg"),
        "redis_py": version("redis"),
        "postgresql": server,
    }


def scenarios_for(args: argparse.Namespace) -> list[Any]:
    from .scenarios import Scenario

    plain = {"BENCH_SWEEPER": "0"}
    scenarios = [
        Scenario("durable-trivial", "durable, trivial steps", "durable", args.workflows, args.steps,
                 "bench.trivial", solo=args.solo),
        Scenario("durable-atomic", "durable, atomic steps (1 insert)", "durable", args.workflows,
                 args.steps, "bench.atomic", solo=args.solo),
        Scenario("chain-default", "chain, 1 insert/task, Celery default", "chain", args.workflows,
                 args.steps, worker_env=plain, solo=args.solo),
        Scenario("chain-reuse", "chain, 1 insert/task, conn. reused", "chain", args.workflows,
                 args.steps, worker_env={**plain, "CELERY_DB_REUSE_MAX": "1000000"}, solo=args.solo),
        Scenario("chain-nodb", "chain, value + 1/task, no database", "plain-chain", args.workflows,
                 args.steps, worker_env=plain, solo=args.solo),
        Scenario("dbos-1proc", "DBOS 3.4, trivial, 1 process", "dbos", args.workflows, args.steps, "inproc",
                 solo=args.solo),
        Scenario("dbos-2proc", "DBOS 3.4, trivial, 2 worker processes", "dbos", args.workflows, args.steps,
                 "queue", solo=args.solo),
        Scenario("durable-100", f"durable, trivial, {args.mid_steps:,} steps/wf", "durable",
                 args.mid_workflows, args.mid_steps, "bench.trivial"),
        Scenario("durable-long", f"durable, trivial, {args.long_steps:,} steps/wf", "durable",
                 args.long_workflows, args.long_steps, "bench.trivial"),
    ]  # fmt: skip
    if args.only:
        wanted = {key.strip() for key in args.only.split(",")} - {"sleepers", "dbos-sleepers", "large-sleepers"}
        unknown = wanted - {scenario.key for scenario in scenarios}
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        scenarios = [scenario for scenario in scenarios if scenario.key in wanted]
    return scenarios


def _wants(args: argparse.Namespace, key: str) -> bool:
    """Whether one of the sleepers measurements (``sleepers``, ``dbos-sleepers``, ``large-sleepers``) is wanted."""
    count = args.large_sleepers if key == "large-sleepers" else args.sleepers
    return count > 0 and (not args.only or key in {name.strip() for name in args.only.split(",")})


def _dbos_bench(args: argparse.Namespace, bench: Any, scenarios: list[Any]) -> Any:
    """DBOS's database, ready, if a DBOS scenario is wanted and DBOS is installed; else None."""
    if not any(scenario.kind == "dbos" for scenario in scenarios) and not _wants(args, "dbos-sleepers"):
        return None
    from .peer import DbosBench, available, prepare

    if not available():
        print("  DBOS is not installed: its rows are left out (make bench installs it: pip install -e '.[bench]')")
        return None
    from .pgstats import Admin

    dbos = DbosBench(
        Admin(args.dbos_database_url),
        args.dbos_database_url,
        bench.log_dir / "dbos",
        worker_concurrency=args.dbos_worker_concurrency,
        polling_interval=args.dbos_polling_interval,
    )
    prepare(dbos)
    return dbos


def _measure_dbos_sleepers(args: argparse.Namespace, bench: Any, dbos: Any, began: float) -> dict[str, Any] | None:
    """The same sleepers as DBOS async workflows in one process; None if DBOS is missing or it failed."""
    if dbos is None:
        print("  DBOS sleepers left out: DBOS is not installed", flush=True)
        return None
    from .dbos_sleepers import measure_dbos_sleepers

    print(f"  DBOS sleepers: {args.sleepers:,} async workflows ({time.monotonic() - began:.0f} s)", flush=True)
    try:
        return measure_dbos_sleepers(
            bench,
            dbos,
            args.sleepers,
            fire_rate=args.sleeper_fire_rate,
            idle_window=args.sleeper_idle_window,
            say=lambda text: print(text, flush=True),
        )
    except Exception as error:  # the other figures are still worth printing
        print(f"  DBOS sleepers failed: {error!r}", flush=True)
        return None


def _measure_sleepers(args: argparse.Namespace, bench: Any, **options: Any) -> dict[str, Any] | None:
    """Durable sleepers with this run's options, ``options`` taking precedence; None if it failed."""
    from .sleepers import measure_sleepers

    chosen: dict[str, Any] = {
        "count": args.sleepers,
        "chunk": args.sleeper_chunk,
        "fire_rate": args.sleeper_fire_rate,
        "idle_window": args.sleeper_idle_window,
        "bulk": args.sleeper_start == "bulk",
        "start_rate_runs": args.start_rate_runs,
        "say": lambda text: print(text, flush=True),
    }
    try:
        return measure_sleepers(bench, **(chosen | options))
    except Exception as error:  # the other figures are still worth printing
        print(f"  sleepers failed: {error!r}", flush=True)
        return None


def rerender(path: Path) -> int:
    """Print the table of an earlier run again, from its JSON file."""
    from . import report
    from .scenarios import Result

    document = json.loads(path.read_text())
    config = document["config"]
    args = parse_args([])
    vars(args).update({**config, "only": ""})  # files written before an option existed keep its default
    seen = {run["scenario"] for run in document["runs"]}
    scenarios = [scenario for scenario in scenarios_for(args) if scenario.key in seen]
    results = [Result(**run) for run in document["runs"]]
    print(_describe(document["machine"]))
    sleepers, dbos_sleepers = document.get("sleepers"), document.get("dbos_sleepers")
    large = document.get("large_sleepers")
    print(report.render(scenarios, report.medians(results), config, document["idle_worker"], sleepers, dbos_sleepers,
                        large))  # fmt: skip
    return 0


def _describe(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpus']} CPUs ({machine['cpu_model']}), PostgreSQL {machine['postgresql']['server_version']}, "
        f"Python {machine['python']}, Django {machine['django']}, Celery {machine['celery']}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    _setup_django(args)
    if args.report:
        return rerender(args.report)

    from django.core.management import call_command

    from . import report
    from .pgstats import Admin
    from .scenarios import Bench, measure, measure_idle

    began = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    scenarios = scenarios_for(args)
    admin = Admin(args.database_url)
    try:
        admin.recreate_database()
        call_command("migrate", verbosity=0)
        bench = Bench(
            admin,
            args.database_url,
            args.broker_url,
            args.out / "logs" / stamp,
            args.concurrency,
            quiet_timeout=args.quiet_wait,
        )
        if args.profile:
            from .profiling import profile

            return profile(bench, args)

        machine = machine_facts(admin.server_facts())
        print(_describe(machine), flush=True)
        dbos = _dbos_bench(args, bench, scenarios)
        if dbos is None:
            scenarios = [scenario for scenario in scenarios if scenario.kind != "dbos"]
        results = []
        for repetition in range(1, args.repeat + 1):
            for scenario in scenarios:
                timeout = 120 + scenario.workflows * scenario.steps / 20
                if scenario.kind == "dbos":
                    from .peer import measure_dbos

                    assert dbos is not None
                    result = measure_dbos(bench, dbos, scenario, repetition, timeout)
                else:
                    result = measure(bench, scenario, repetition, timeout)
                results.append(result)
                print(
                    f"  [{repetition}/{args.repeat}] {scenario.key:<16} {result.steps_per_second:7.0f} steps/s  "
                    f"p50 {result.latency_p50_ms:6.0f} ms  {result.commits_per_workflow:5.1f} commits/wf  "
                    f"other CPU {result.other_cpu:4.0%}  ({time.monotonic() - began:.0f} s)",
                    flush=True,
                )
        idle = measure_idle(bench, args.idle_seconds) if args.idle_seconds > 0 and results else None
        summary = report.medians(results)
        config = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
        config["started"] = stamp
        # Written now and again at the end, so an interrupted sleepers measurement loses nothing else.
        report.write_json(args.out, stamp, config, machine, results, summary, idle)
        sleepers = None
        if _wants(args, "sleepers"):
            print(f"  sleepers: {args.sleepers:,} sleeping workflows ({time.monotonic() - began:.0f} s)", flush=True)
            sleepers = _measure_sleepers(args, bench)
        dbos_sleepers = _measure_dbos_sleepers(args, bench, dbos, began) if _wants(args, "dbos-sleepers") else None
        large = None
        if _wants(args, "large-sleepers"):
            count, due = args.large_sleepers, args.large_sleepers_due
            print(f"  large sleepers: {count:,}, {due:,} of them due ({time.monotonic() - began:.0f} s)", flush=True)
            # The start rates without a worker were measured with the sleepers above.
            large = _measure_sleepers(args, bench, count=count, due_count=due, start_rate_runs=0,
                                      asleep_within=args.large_sleepers_within, flat_start_target=True)  # fmt: skip
        path = report.write_json(
            args.out, stamp, config, machine, results, summary, idle, sleepers, dbos_sleepers, large
        )
        print(report.render(scenarios, summary, config, idle, sleepers, dbos_sleepers, large))
        print(f"\nRaw numbers: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        print(f"Total time: {time.monotonic() - began:.0f} s")
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        admin.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: the worker was stopped, nothing is left running", file=sys.stderr)
        sys.exit(130)
