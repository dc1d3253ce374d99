"""``make fuzz``: thousands of generated programs against a real Celery worker that is SIGKILLed at random.

    python -m tests.conformance.fuzz --programs 2000 --seed 7 --kills
    python -m tests.conformance.fuzz --programs 10000 --seed 7 --inline   # in-process, no worker

Programs run side by side (``--batch`` at a time), each with its own clock. An event is
applied to a program only while all its runs are idle (nothing leased or due), so what
each event meets is determined; ``time`` moves only that program's timers, one at a time
(as ``pass_time``). Kills land whenever work is under way. What a kill changes (an
attempt lost: it counts, and the next one starts at once) is read from the journal and
given to the model (:mod:`.lost`), so every property is still checked exactly: each run's
status, result or error, state, generation and unconsumed signals, every yield's value,
which step attempts ran, which atomic rows committed, and each signal's and cancel's reply.
Cases whose outcome the model cannot call (``ambiguous``) or that meet a known bug are
counted, not checked. A disagreement is printed, shrunk in-process when it reproduces
there. Program ``i`` of a seed is always the same program: rerun one with ``--only i``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--kills", action="store_true", help="SIGKILL pool processes and the worker at random")
    parser.add_argument("--batch", type=int, default=12, help="programs in flight at once")
    parser.add_argument("--case-timeout", type=float, default=300.0, help="seconds a program may stay busy")
    parser.add_argument("--only", type=int, default=None, help="run program number ONLY of the seed alone")
    parser.add_argument("--shrink-budget", type=int, default=300, help="in-process runs to shrink one failure")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--inline", action="store_true", help="run in-process, no worker (faster; adds late signals)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    # Its own database, and a broker database of its own unless one is given (never the tests' default 15).
    os.environ["TEST_DB_NAME"] = os.environ.get("TEST_DB_NAME", "durable_django_test") + "_fuzz"
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
    import django

    django.setup()
    from .cluster import Database, Killer
    from .fuzz_runner import Runner, report_failures

    started = time.monotonic()
    print(f"make fuzz: seed {seed}, {args.programs} programs, kills {'on' if args.kills else 'off'}", flush=True)
    database = Database(keep=args.keep_db)
    indexes = [args.only] if args.only is not None else list(range(args.programs))
    if args.inline:
        from .fuzz_inline import fuzz_inline

        try:
            failures, summary = fuzz_inline(seed, indexes, args.shrink_budget)
        finally:
            database.drop()
        print(f"{summary}\n  wall time: {time.monotonic() - started:.0f} s", flush=True)
        return 1 if failures else 0
    workdir = Path(tempfile.mkdtemp(prefix="conformance-fuzz-"))
    try:
        killer = Killer(database.env(), workdir / "logs", workdir / "journal.jsonl", random.Random(seed), args.kills)
        runner = Runner(seed, indexes, workdir / "journal.jsonl", killer, args.batch, args.case_timeout)
        try:
            runner.run()
        finally:
            killer.stop()
        report_failures(runner, args.shrink_budget)
    finally:
        database.drop()
    print(runner.summary(time.monotonic() - started, workdir), flush=True)
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
