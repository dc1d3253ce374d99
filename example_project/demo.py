"""``make demo``: checkouts on SQLite while a real Celery worker is SIGKILLed in the middle of steps.

This process plays the web process: it creates orders and starts a durable ``checkout`` for
each in the same transaction. A ``celery worker`` (prefork, 2 pool processes, Celery's
filesystem broker) runs the steps. The demo SIGKILLs pool processes, and once the whole
worker, while they hold a step's lease, restarts the worker, then checks the database and
the payment provider's ledger: every order paid, every card charged exactly once.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sys
import time
from collections import Counter
from pathlib import Path

from example_project.processes import CeleryWorker

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


class DemoFailed(Exception):
    """An invariant is broken, or the runs did not finish in time."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m example_project.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=24, help="checkouts to start (default 24)")
    parser.add_argument("--kills", type=int, default=4, help="mid-step kills, the last of the whole worker (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="seed for when and whom to kill")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the runs (default 60)")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.kills < 0:
        parser.error("--orders must be at least 1 and --kills at least 0")
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
        wait_finished(worker, args.timeout)
        report(args.orders, kills, time.monotonic() - started)
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
            checkout.start(order.pk, order.amount_cents, workflow_id=f"order-{order.pk}")
    print(f"web process: {count} orders created, each with its checkout started in the same transaction")


def steps_held(pids: list[int]) -> list[tuple[int, str, bool]]:
    """(pid, step, card already charged?) for each step these processes hold a live lease on."""
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Now

    from durable_django.models import HistoryEntry, WorkItem, idempotency_key
    from example_project.shop import payments

    owners = {f"{socket.gethostname()}:{pid}": pid for pid in pids}  # WorkItem.owner is "host:pid"
    name = HistoryEntry.objects.filter(run=OuterRef("run"), seq=OuterRef("seq")).values("name")[:1]
    items = WorkItem.objects.filter(kind=WorkItem.Kind.STEP, owner__in=owners, lease_expires_at__gt=Now())
    rows = list(
        items.annotate(step=Subquery(name)).values_list(
            "owner", "step", "run__workflow_id", "run_id", "run__generation", "seq"
        )
    )
    charged = {charge["idempotency_key"] for charge in payments.ledger()} if rows else set()
    return [
        (owners[owner], f"{step.rsplit('.', 1)[-1]} of {workflow_id}", idempotency_key(run, gen, seq) in charged)
        for owner, step, workflow_id, run, gen, seq in rows
    ]


def kill_steps_in_flight(worker: CeleryWorker, kills: int, rng: random.Random) -> Counter[str]:
    """SIGKILL pool processes while they run a step (the last kill takes the whole worker); count what landed.

    It aims at a charge_card that the provider already charged, before the reply is recorded.
    """
    from durable_django.models import WorkflowRun

    landed: Counter[str] = Counter()
    deadline = time.monotonic() + 30
    while landed.total() < kills and time.monotonic() < deadline:
        if not WorkflowRun.objects.exclude(status__in=WorkflowRun.FINISHED).exists():
            break
        busy = sorted({pid for pid, _, charged in steps_held(worker.children()) if charged})
        if not busy:
            time.sleep(0.02)
            continue
        if landed.total() < kills - 1:
            victims, kind = [rng.choice(busy)], "pool process"
            what = f"pool process {victims[0]}"
            if not worker.kill_child(victims[0]):
                continue
        else:
            victims, kind = [worker.pid, *worker.children()], "whole worker"
            what = f"the whole worker (main {victims[0]}, pool {', '.join(map(str, victims[1:]))})"
            worker.kill()
        held = steps_held(victims)  # they are dead now: a lease one still holds was cut mid-step
        if held:
            landed[kind] += 1
            steps = "; ".join(step + (" (card charged, reply not recorded)" if paid else "") for _, step, paid in held)
            print(f"  kill {landed.total()}: SIGKILL {what} while it ran {steps}")
        else:
            print(f"  missed: SIGKILL {what} landed just after its step finished; not counted")
        if worker.process is None:
            worker.start()
            print(f"  worker restarted: pid {worker.pid}, pool {worker.children()}")
        time.sleep(rng.uniform(0.2, 0.6))
    if landed.total() < kills:
        print(f"  only {landed.total()} of {kills} kills landed mid-step: the work finished first (try more --orders)")
    return landed


def wait_finished(worker: CeleryWorker, timeout: float) -> None:
    from durable_django.models import WorkflowRun

    print("waiting for every run to finish (a killed step is taken over once its lease expires)...")
    deadline = time.monotonic() + timeout
    while WorkflowRun.objects.exclude(status__in=WorkflowRun.FINISHED).exists():
        if worker.process is None or worker.process.poll() is not None:
            raise DemoFailed("the worker process exited on its own")
        if time.monotonic() > deadline:
            counts = Counter(WorkflowRun.objects.values_list("status", flat=True))
            raise DemoFailed(f"runs not finished after {timeout:g} s: {dict(counts)}")
        time.sleep(0.2)


def report(n: int, kills: Counter[str], elapsed: float) -> None:
    """Check the invariants from the database and the provider's own ledger; raise DemoFailed if one is broken."""
    from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
    from example_project.shop import payments
    from example_project.shop.models import Order

    orders = {f"order-{order.pk}": order for order in Order.objects.all()}
    runs = {run.workflow_id: run for run in WorkflowRun.objects.all()}
    ledger = payments.ledger()
    charges = Counter(charge["reference"] for charge in ledger)
    charge_id = {charge["reference"]: charge["charge_id"] for charge in ledger}
    run_charge = {ref: (run.result or {}).get("charge") for ref, run in runs.items() if run.status == "completed"}

    def agree(ref: str, order: Order) -> bool:
        return bool(order.charge_id) and order.charge_id == charge_id.get(ref) == run_charge.get(ref)

    checks = [
        ("orders", len(orders), n),
        ("checkout runs completed", sum(run.status == WorkflowRun.Status.COMPLETED for run in runs.values()), n),
        ("orders paid", sum(order.status == Order.Status.PAID for order in orders.values()), n),
        ("cards charged exactly once (provider's ledger)", sum(charges[ref] == 1 for ref in orders), n),
        ("charges in the provider's ledger", len(ledger), n),
        ("mark_paid wrote exactly once (paid_writes == 1)", sum(o.paid_writes == 1 for o in orders.values()), n),
        ("order, run result and ledger agree on the charge", sum(agree(ref, o) for ref, o in orders.items()), n),
        ("work items left over", WorkItem.objects.count(), 0),
    ]
    print("\nreport")
    broken = []
    for label, value, expected in checks:
        if value == expected:
            print(f"  ok  {label:50} {value}")
        else:
            print(f"  BAD {label:50} {value} (expected {expected})")
            broken.append(f"{label}: {value}, expected {expected}")
    retried = sum(charge["requests"] > 1 for charge in ledger)
    print(f"      {'charges requested more than once':50} {retried}  (same idempotency key: no double charge)")
    print(f"      {'steps that ran more than once':50} {HistoryEntry.objects.filter(attempts__gt=1).count()}")
    kinds = ", ".join(f"{kind}: {count}" for kind, count in kills.items())
    print(f"      {'kills that landed mid-step':50} {kills.total()}" + f" ({kinds})" * bool(kinds))
    print(f"      {'elapsed':50} {elapsed:.1f} s")
    if broken:
        raise DemoFailed("; ".join(broken))


if __name__ == "__main__":
    sys.exit(main())
