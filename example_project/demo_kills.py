"""The demo's fault injection: SIGKILL worker processes while they hold a step's lease."""

from __future__ import annotations

import random
import socket
import time
from collections import Counter

from tests.support.processes import CeleryWorker


def steps_held(pids: list[int]) -> list[tuple[int, str, bool]]:
    """(pid, step, card already charged?) for each step these processes hold a live lease on."""
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Now

    from durable_django.models import HistoryEntry, WorkItem, idempotency_key
    from durable_django.store.owners import Owner
    from example_project.shop import payments

    name = HistoryEntry.objects.filter(run=OuterRef("run"), seq=OuterRef("seq")).values("name")[:1]
    items = WorkItem.objects.filter(
        kind=WorkItem.Kind.STEP, owner__startswith=f"{socket.gethostname()}:", lease_expires_at__gt=Now()
    )
    rows = list(
        items.annotate(step=Subquery(name)).values_list(
            "owner", "step", "run__workflow_id", "run_id", "run__generation", "seq"
        )
    )
    holders = {owner: parsed.pid for owner, *_ in rows if (parsed := Owner.parse(owner)) and parsed.pid in pids}
    charged = {charge["idempotency_key"] for charge in payments.ledger()} if holders else set()
    return [
        (holders[owner], f"{step.rsplit('.', 1)[-1]} of {workflow_id}", idempotency_key(run, gen, seq) in charged)
        for owner, step, workflow_id, run, gen, seq in rows
        if owner in holders
    ]


def kill_steps_in_flight(worker: CeleryWorker, kills: int, rng: random.Random) -> Counter[str]:
    """SIGKILL pool processes while they run a step (the last kill takes the whole worker); count what landed.

    It aims at a charge_card that the provider already charged, before the reply is recorded.
    """
    from example_project.shop.models import Order

    landed: Counter[str] = Counter()
    deadline = time.monotonic() + 30
    while landed.total() < kills and time.monotonic() < deadline:
        if not Order.objects.filter(status=Order.Status.NEW).exists():  # every card charged: nothing to aim at
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
            steps = "; ".join(step + " (card charged, reply not recorded)" * charged for _, step, charged in held)
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
