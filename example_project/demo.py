"""``make demo``: checkouts on SQLite while a real Celery worker is SIGKILLed in the middle of steps.

This process plays the web process: it creates orders and starts a durable ``checkout`` for
each in the same transaction. A ``celery worker`` (prefork, 2 pool processes, Celery's
filesystem broker) runs the steps. The demo SIGKILLs pool processes while they hold a step's
lease (the last time, the whole worker) and restarts the worker. Once every order is paid,
the web process ships most orders, cancels a few, and leaves a few unshipped until their
timeout. Then it checks the database and the payment provider's ledger: every card charged
exactly once, shipped orders shipped, the others refunded exactly once.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from itertools import zip_longest
from pathlib import Path

from example_project.demo_kills import kill_steps_in_flight
from example_project.demo_report import DemoFailed, Plan, report
from tests.support.processes import CeleryWorker

ROOT = Path(__file__).resolve().parent.parent
USERNAME, PASSWORD = "demo", "demo"  # a throwaway local database
# Read by example_project/settings.py, here and in the worker: a slow provider, so that kills land while a
# charge is in flight, and recovery timers short enough to watch (a killed step is taken over ~6 s later).
DEMO_ENV = {
    "DJANGO_SETTINGS_MODULE": "example_project.settings",
    "PAYMENTS_LATENCY": "0.4",
    "DURABLE_LEASE_GRACE": "1",
    "DURABLE_REPUBLISH_AFTER": "2",
    "DURABLE_SWEEP_INTERVAL": "0.5",
}
COOLING_OFF_SECONDS = 5  # the checkout's cooling-off period (an hour by default), short enough to watch
SHIP_WITHIN_DAYS = 7  # how long the checkout waits for "shipped" before it refunds (its default)
CARRIERS = ("UPS", "DHL", "FedEx", "GLS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m example_project.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=24, help="checkouts to start (default 24)")
    parser.add_argument("--kills", type=int, default=4, help="mid-step kills, the last of the whole worker (default 4)")
    parser.add_argument("--cancel", type=int, default=3, help="paid orders to cancel (default 3)")
    parser.add_argument("--unshipped", type=int, default=2, help="paid orders never shipped (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for when and whom to kill")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait at each stage (default 60)")
    args = parser.parse_args(argv)
    if args.orders < 1 or min(args.kills, args.cancel, args.unshipped) < 0:
        parser.error("--orders must be at least 1, and the other counts at least 0")
    if args.cancel + args.unshipped > args.orders:
        parser.error("--cancel plus --unshipped must not exceed --orders")
    started = time.monotonic()
    var_dir = Path(os.environ.get("DEMO_VAR_DIR") or ROOT / "var").resolve()
    reset(var_dir)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "PAYMENTS_LEDGER"):  # always SQLite and the filesystem broker
        os.environ.pop(name, None)
    os.environ.update(DEMO_ENV, DEMO_VAR_DIR=str(var_dir))

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    User.objects.create_superuser(USERNAME, "demo@example.com", PASSWORD)
    print(f"durable_django demo: {args.orders} checkouts; SQLite database and filesystem broker in {var_dir}")
    worker = CeleryWorker("example_project", {}, var_dir / "logs", concurrency=2)
    failure = None
    try:
        worker.start()
        print(f"worker started: pid {worker.pid}, pool {worker.children()} (celery -A example_project worker)")
        start_checkouts(args.orders)
        kills = kill_steps_in_flight(worker, args.kills, random.Random(args.seed))
        wait = partial(wait_until, worker, args.timeout)
        wait("every order to be paid (a killed step is taken over once its lease expires)", paid)
        plan = ship_and_cancel(args.cancel, args.unshipped)
        wait("the shipped and cancelled orders' checkouts to finish", lambda: finished(but=plan.unshipped))
        if plan.unshipped:
            let_a_week_pass(wait, plan.unshipped)
        wait("every checkout to finish", finished)
        report(args.orders, plan, kills, time.monotonic() - started)
    except DemoFailed as error:
        failure = error
    finally:
        print("stopping the worker (warm shutdown)...", flush=True)
        worker.stop()
    if failure is not None:
        print(f"\nFAILED: {failure}\nworker logs: {var_dir / 'logs'}")
        return 1
    env = "" if var_dir == (ROOT / "var").resolve() else f"DEMO_VAR_DIR={var_dir} "
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(f"{ROOT}{os.sep}") else sys.executable
    print("\nAll invariants hold. See the runs and their steps in the admin:")
    print(f"  cd {ROOT}\n  {env}{python} manage.py runserver 127.0.0.1:8000")
    print(f"  then open http://127.0.0.1:8000/admin/durable_django/workflowrun/ as {USERNAME} / {PASSWORD}")
    return 0


def reset(var_dir: Path) -> None:
    """Delete what an earlier demo left (only the files the demo makes)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    for path in [*var_dir.glob("db.sqlite3*"), *var_dir.glob("payments-ledger.sqlite3*")]:
        path.unlink()
    for name in ("broker", "logs"):
        shutil.rmtree(var_dir / name, ignore_errors=True)


def start_checkouts(count: int) -> None:
    """What a view does: the order and its run commit together; the worker is woken only after the commit."""
    from django.db import transaction

    from example_project.shop.models import Order
    from example_project.shop.workflows import checkout

    for number in range(count):
        with transaction.atomic():
            order = Order.objects.create(amount_cents=1000 + 25 * number)
            checkout.start(order.pk, order.amount_cents, COOLING_OFF_SECONDS, workflow_id=f"order-{order.pk}")
    print(f"web process: {count} orders created, each with its checkout started in the same transaction")
    print(f"  each charges the card, then a cooling-off period: {COOLING_OFF_SECONDS} s here, an hour by default")


def paid() -> bool:
    from example_project.shop.models import Order

    return not Order.objects.filter(status=Order.Status.NEW).exists()


def finished(but: list[str] | None = None) -> bool:
    """Every run has finished (but those with these workflow ids)."""
    from durable_django.models import WorkflowRun

    runs = WorkflowRun.objects.exclude(workflow_id__in=but or [])
    return not runs.exclude(status__in=WorkflowRun.FINISHED).exists()


def ship_and_cancel(cancels: int, unshipped: int) -> Plan:
    """The web process ships most paid orders, cancels a few and leaves the last few unshipped.

    It cancels orders in both stages when it can, and ships some that are still cooling off:
    their "shipped" signal waits in the run's inbox until the sleep ends.
    """
    from durable_django.models import WorkflowRun

    runs = sorted(WorkflowRun.objects.all(), key=lambda run: int(run.workflow_id.removeprefix("order-")))
    cooling = [run for run in runs if run.state != "awaiting shipment"]  # the latest paid are still cooling off
    awaiting = [run for run in runs if run.state == "awaiting shipment"]
    print(f"web process: every order is paid; {len(cooling)} cooling off, {len(awaiting)} awaiting shipment")
    to_cancel = [run for pair in zip_longest(cooling[::-1], awaiting) for run in pair if run is not None][:cancels]
    rest = [run for run in runs if run not in to_cancel]
    to_ship, left = rest[: len(rest) - unshipped], rest[len(rest) - unshipped :]
    plan = Plan({}, [run.workflow_id for run in to_cancel], [run.workflow_id for run in left])
    for number, run in enumerate(to_ship):
        plan.shipped[run.workflow_id] = carrier = CARRIERS[number % len(CARRIERS)]
        run.signal("shipped", {"carrier": carrier})
    print(f'  shipped {len(to_ship)} orders: run.signal("shipped", {{"carrier": ...}})')
    for run in to_cancel:
        run.cancel()
    print(f"  cancelled: {', '.join(plan.cancelled) or 'none'} (run.cancel())")
    print(f"  left unshipped: {', '.join(plan.unshipped) or 'none'}")
    return plan


def let_a_week_pass(wait: Callable[[str, Callable[[], bool]], None], unshipped: list[str]) -> None:
    """The unshipped checkouts wait for "shipped" for up to a week, then refund.

    The demo compresses days into seconds: advance_time() moves every pending timer (by now only
    these orders' shipping timeouts) a week closer, as if the week had passed, and wakes them.
    """
    from durable_django.models import HistoryEntry
    from durable_django.testing import advance_time

    waits = HistoryEntry.objects.filter(run__workflow_id__in=unshipped, kind="signal", status="scheduled")
    wait(
        f"{', '.join(unshipped)} to wait for shipment (up to {SHIP_WITHIN_DAYS} days)",
        lambda: waits.count() == len(unshipped),
    )
    advance_time(timedelta(days=SHIP_WITHIN_DAYS))
    print(f"a week passes: advance_time(timedelta(days={SHIP_WITHIN_DAYS})), days compressed into seconds")


def wait_until(worker: CeleryWorker, timeout: float, what: str, done: Callable[[], bool]) -> None:
    from durable_django.models import WorkflowRun

    print(f"waiting for {what}...", flush=True)
    deadline = time.monotonic() + timeout
    while not done():
        if worker.process is None or worker.process.poll() is not None:
            raise DemoFailed("the worker process exited on its own")
        if time.monotonic() > deadline:
            counts = Counter(WorkflowRun.objects.values_list("status", flat=True))
            raise DemoFailed(f"waited {timeout:g} s for {what}; runs: {dict(counts)}")
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
