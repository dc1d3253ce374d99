"""The workload: order plans drawn from the seed, and the threads that act them out.

The starter opens each order and starts its workflow in one transaction (or rolls it back
on purpose, or starts it a second time with the same workflow_id). The controller watches
the runs and plays the plan's part: a "ship" or "cancel" decision signal once the run waits
for it (or early, before the wait, or twice), or ``run.cancel()`` once the order is paid.

Every database call is retried on connection errors (PostgreSQL may be restarting); a
commit whose outcome is unknown is resolved by looking for the row it would have written.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models.functions import Now

from .timeline import Timeline

T = TypeVar("T")
logger = logging.getLogger("chaos")

#: Paths an order's plan takes after the charge; "declined" orders never get that far.
PATHS = {
    "ship": 0.50,  # a "ship" signal once the run waits for it
    "ship-early": 0.15,  # the "ship" signal right after the start commits, before the wait
    "ship-twice": 0.08,  # two "ship" signals: one is taken, the other stays unread
    "cancel": 0.10,  # run.cancel() once the order is paid: the workflow refunds and re-raises
    "cancel-signal": 0.05,  # a "cancel" decision signal: the workflow refunds and returns
    "timeout": 0.12,  # no signal: the wait times out and the workflow refunds
}
#: What each path must end as: (run status, result status, refund reason).
EXPECTED = {
    "ship": ("completed", "shipped", ""),
    "ship-early": ("completed", "shipped", ""),
    "ship-twice": ("completed", "shipped", ""),
    "cancel": ("cancelled", None, "cancelled"),
    "cancel-signal": ("completed", "refunded", "cancel-signal"),
    "timeout": ("completed", "refunded", "timeout"),
    "declined": ("completed", "declined", ""),
}
#: The wait for a decision when one will come: long, so a decision is never overtaken by the timeout.
LONG_WAIT = 90.0


class Rollback(Exception):
    """Raised inside a start's transaction to roll it back on purpose."""


@dataclass
class OrderPlan:
    index: int
    ref: str
    amount_cents: int
    path: str
    rollback: bool
    duplicate_start: bool
    sleep_seconds: float
    wait_seconds: float
    start_at: float
    # What happened (filled in as the run goes).
    outcome: str = "planned"  # committed | rolled_back | failed_to_start
    order_id: int | None = None
    run_id: str | None = None
    indeterminate: bool = False
    duplicate_same_run: bool | None = None
    signals: list[dict[str, Any]] = field(default_factory=list)
    cancel: str = ""  # "" | committed | refused | failed
    done: bool = False


def make_plans(count: int, seed: int, start_window: float) -> list[OrderPlan]:
    """``count`` order plans, their starts spread over ``start_window`` seconds."""
    rng = random.Random(seed)
    names, weights = zip(*PATHS.items(), strict=True)
    plans = []
    for index in range(count):
        magic = rng.random()
        if magic < 0.05:
            ending = 1  # declined
        elif magic < 0.10:
            ending = 2  # 503 for the first two requests
        elif magic < 0.15:
            ending = 3  # applied, then the connection drops
        else:
            ending = rng.randrange(10, 100)
        amount = rng.randrange(5, 200) * 100 + ending
        path = "declined" if ending == 1 else rng.choices(names, weights)[0]
        plans.append(
            OrderPlan(
                index=index,
                ref=f"order-{seed}-{index}",
                amount_cents=amount,
                path=path,
                rollback=rng.random() < 0.05,
                duplicate_start=rng.random() < 0.04,
                sleep_seconds=round(rng.uniform(0.3, 2.0), 2),
                wait_seconds=round(rng.uniform(1.5, 4.0), 2) if path == "timeout" else LONG_WAIT,
                start_at=start_window * index / max(1, count),
            )
        )
    return plans


def with_retries(action: Callable[[], T], *, what: str, deadline: float, pause: float = 0.2) -> T:
    """Run ``action``; on a lost connection, reconnect and try again until ``deadline`` (monotonic)."""
    while True:
        try:
            return action()
        except (OperationalError, InterfaceError) as error:
            connection.close()
            if time.monotonic() > deadline:
                raise
            logger.info("%s: %s; retrying", what, str(error).strip().splitlines()[0] if str(error) else error)
            time.sleep(pause)


class Workload:
    """The orders of one harness run, and the two threads that start and steer them."""

    def __init__(self, plans: list[OrderPlan], seed: int, timeline: Timeline) -> None:
        self.plans = plans
        self.by_ref = {plan.ref: plan for plan in plans}
        self.rng = random.Random(seed + 1)
        self.timeline = timeline
        self.stop = threading.Event()
        self.starts_done = threading.Event()
        self._later: list[tuple[float, int, str, str]] = []  # (due, tiebreak, action, ref)
        self._lock = threading.Lock()
        self._counter = 0
        self.errors: list[str] = []
        self.t0 = time.monotonic()

    # The starter thread.
    def run_starter(self) -> None:
        try:
            for plan in self.plans:
                due = self.t0 + plan.start_at
                while not self.stop.is_set() and time.monotonic() < due:
                    time.sleep(min(0.05, max(0.0, due - time.monotonic())))
                if self.stop.is_set():
                    return
                self._start(plan)
        except Exception as error:
            self.errors.append(f"starter: {type(error).__name__}: {error}")
            logger.exception("starter failed")
        finally:
            self.starts_done.set()
            connection.close()

    def _start(self, plan: OrderPlan) -> None:
        from .shop.models import Order
        from .shop.workflows import place_order

        deadline = time.monotonic() + 60
        while True:
            holder: dict[str, Any] = {}
            try:
                with transaction.atomic():
                    order = Order.objects.create(ref=plan.ref, amount_cents=plan.amount_cents)
                    holder["order_id"] = order.pk
                    run = place_order.start(
                        order.pk, plan.amount_cents, plan.sleep_seconds, plan.wait_seconds, workflow_id=plan.ref
                    )
                    holder["run_id"] = str(run.pk)
                    if plan.rollback:
                        raise Rollback
                    holder["committing"] = True
                plan.outcome, plan.order_id, plan.run_id = "committed", order.pk, str(run.pk)
                break
            except Rollback:
                plan.outcome, plan.order_id = "rolled_back", holder["order_id"]
                return
            except (OperationalError, InterfaceError) as error:
                connection.close()
                if holder.get("committing"):  # the commit itself failed: did it land?
                    plan.indeterminate = True
                    found = with_retries(
                        lambda: Order.objects.filter(ref=plan.ref).values_list("pk", flat=True).first(),
                        what=f"resolve start {plan.ref}",
                        deadline=deadline,
                    )
                    if found is not None:
                        plan.outcome, plan.order_id, plan.run_id = "committed", found, holder.get("run_id")
                        break
                if time.monotonic() > deadline:
                    plan.outcome = "failed_to_start"
                    self.errors.append(f"start {plan.ref}: {error}")
                    return
                time.sleep(0.2)
        if plan.path == "ship-early":
            self._signal(plan, "ship", early=True)
        if plan.duplicate_start:
            self._schedule(self.rng.uniform(0.0, 3.0), "duplicate_start", plan.ref)

    # The controller thread.
    def run_controller(self, until: Callable[[], bool]) -> None:
        """Steer the runs until ``until()`` is true or ``stop`` is set."""
        try:
            while not self.stop.is_set() and not until():
                self._step()
                time.sleep(0.2)
        except Exception as error:
            self.errors.append(f"controller: {type(error).__name__}: {error}")
            logger.exception("controller failed")
        finally:
            connection.close()

    def pending_actions(self) -> int:
        with self._lock:
            later = len(self._later)
        waiting = sum(1 for plan in self.plans if plan.outcome == "committed" and not plan.done)
        return later + waiting

    def _step(self) -> None:
        from durable_django.models import HistoryEntry

        from .shop.models import Order

        deadline = time.monotonic() + 30
        want_signal = {
            plan.run_id: plan
            for plan in self.plans
            if plan.outcome == "committed"
            and not plan.done
            and plan.run_id
            and plan.path in ("ship", "ship-twice", "cancel-signal")
        }
        if want_signal:
            waiting = with_retries(
                lambda: list(
                    HistoryEntry.objects.filter(
                        run_id__in=list(want_signal), kind="signal", status=HistoryEntry.Status.SCHEDULED
                    ).values_list("run_id", flat=True)
                ),
                what="find waiting runs",
                deadline=deadline,
            )
            for run_id in waiting:
                plan = want_signal[str(run_id)]
                plan.done = True
                action = "cancel" if plan.path == "cancel-signal" else "ship"
                self._signal(plan, action)
                if plan.path == "ship-twice":
                    self._signal(plan, "ship")  # right away: both commit before the run takes one
        want_cancel = {
            plan.order_id: plan
            for plan in self.plans
            if plan.outcome == "committed" and not plan.done and plan.path == "cancel"
        }
        if want_cancel:
            paid = with_retries(
                lambda: list(
                    Order.objects.filter(pk__in=list(want_cancel), status=Order.Status.PAID).values_list(
                        "pk", flat=True
                    )
                ),
                what="find paid orders",
                deadline=deadline,
            )
            for order_id in paid:
                plan = want_cancel[order_id]
                plan.done = True
                self._schedule(self.rng.uniform(0.0, 1.5), "cancel", plan.ref)
        for plan in self.plans:  # nothing more to do for these
            if plan.outcome == "committed" and not plan.done and plan.path in ("ship-early", "timeout", "declined"):
                plan.done = True
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._later or self._later[0][0] > now:
                    break
                _, _, action, ref = heapq.heappop(self._later)
            plan = self.by_ref[ref]
            if action == "duplicate_start":
                self._duplicate_start(plan)
            elif action == "cancel":
                self._cancel(plan)

    def _schedule(self, delay: float, action: str, ref: str) -> None:
        with self._lock:
            self._counter += 1
            heapq.heappush(self._later, (time.monotonic() + delay, self._counter, action, ref))

    # The actions.
    def _signal(self, plan: OrderPlan, action: str, *, early: bool = False) -> None:
        """Send a decision signal with a receipt in the same transaction; resolve unknown commits."""
        import durable_django as durable

        from .shop.models import SignalReceipt

        nonce = uuid.uuid4().hex
        record: dict[str, Any] = {"nonce": nonce, "action": action, "early": early, "outcome": ""}
        plan.signals.append(record)
        deadline = time.monotonic() + 60
        while True:
            try:
                with transaction.atomic():
                    SignalReceipt.objects.create(nonce=nonce, ref=plan.ref, action=action, early=early)
                    durable.signal(plan.ref, "decision", {"action": action, "nonce": nonce})
                record["outcome"] = "committed"
                break
            except durable.RunFinished:
                record["outcome"] = "refused_finished"
                return
            except (OperationalError, InterfaceError, DatabaseError) as error:
                connection.close()
                exists = with_retries(
                    lambda: SignalReceipt.objects.filter(nonce=nonce).exists(),
                    what=f"resolve signal {nonce}",
                    deadline=deadline,
                )
                if exists:
                    record["outcome"] = "committed"
                    break
                if time.monotonic() > deadline:
                    record["outcome"] = f"failed: {error}"
                    self.errors.append(f"signal {plan.ref}: {error}")
                    return
                time.sleep(0.2)
        with contextlib.suppress(DatabaseError):  # only a bound for one check, which skips a signal without it
            with_retries(
                lambda: SignalReceipt.objects.filter(nonce=nonce).update(committed_at=Now()),
                what="stamp signal",
                deadline=deadline,
            )

    def _cancel(self, plan: OrderPlan) -> None:
        import durable_django as durable

        deadline = time.monotonic() + 60

        def cancel() -> None:
            with transaction.atomic():
                durable.cancel(plan.ref)

        try:
            with_retries(cancel, what=f"cancel {plan.ref}", deadline=deadline)
            plan.cancel = "committed"
        except durable.RunFinished:
            plan.cancel = "refused_finished"
        except DatabaseError as error:
            plan.cancel = f"failed: {error}"
            self.errors.append(f"cancel {plan.ref}: {error}")

    def _duplicate_start(self, plan: OrderPlan) -> None:
        from .shop.workflows import place_order

        deadline = time.monotonic() + 60

        def start_again() -> str:
            with transaction.atomic():
                run = place_order.start(
                    plan.order_id, plan.amount_cents, plan.sleep_seconds, plan.wait_seconds, workflow_id=plan.ref
                )
            return str(run.pk)

        try:
            run_id = with_retries(start_again, what=f"start {plan.ref} again", deadline=deadline)
        except (DatabaseError, IntegrityError) as error:
            self.errors.append(f"duplicate start {plan.ref}: {error}")
            return
        plan.duplicate_same_run = plan.run_id is None or run_id == plan.run_id
        if plan.run_id is None:
            plan.run_id = run_id
