"""The command line, ``python -m chaos``: the arguments, the run folder, signals, the hard time limit, the exit status.

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
import random
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from . import report as reporting
from . import run as orchestrator
from .profiles import PROFILES
from .run import Harness
from .services import ROOT

logger = logging.getLogger("chaos")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Overtime(Exception):
    """The whole run took longer than its hard limit."""


def _overtime(signum: int, frame: FrameType | None) -> None:
    raise Overtime("the run exceeded its hard time limit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=(orchestrator.__doc__ or "").splitlines()[0])
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
