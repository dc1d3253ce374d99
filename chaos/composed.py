"""The composed workload: signal loops, sagas, parents with children, subscriptions, counters (chaos/shop/composed.py).

It runs beside the orders, under the same faults. Each plan is drawn from the seed: the
workflow and its arguments, its deadline if any, when it starts, and what the driver does
to it afterwards, at fixed offsets from its start: signals (some in the start's own
transaction, some right after it, before the run reaches its wait; bursts in one
transaction or back to back; an "exit" close behind the last "submit"; some after the run
may have finished), cancels at random points (twice, for some) and updates. One thread acts
every plan out, in time order; updates, which wait for their reply, are handed to a pool of
threads, so several reach a counter at once.

Signals carry a nonce and a ``SignalReceipt`` written in the same transaction, as the
orders' do; starts, signals and cancels are retried on connection errors and a commit
whose outcome is unknown is resolved by looking for the row it would have written. An
update is called again with its ``update_id`` after an error or a timeout, as docs/updates.md
says to; every call and what it returned is kept for the checker.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models.functions import Now

from .workload import with_retries

logger = logging.getLogger("chaos")

#: Shares of the composed plans by kind.
KINDS = {"loop": 0.25, "saga": 0.35, "family": 0.13, "subscription": 0.12, "ballot": 0.05, "counter": 0.10}
#: Saga order ids live above the orders' primary keys (the fake API keys effects by order id).
SAGA_ORDER_BASE = 10_000_000
#: A loop that will be told to "exit" idles out only after this long.
LOOP_LONG_IDLE = 30.0
#: How long a mid-step cancel waits for its step's attempt to start before it is sent anyway.
MID_STEP_PATIENCE = 20.0
#: A saga's deadline when it has one it should meet (it completes in seconds), and the range of the
#: deadlines of sagas that wait for an approval no one sends (only the deadline ends them).
LOOSE_DEADLINE = 300.0
TIGHT_DEADLINE = (1.0, 3.0)
#: Threads that send updates (each call waits for its reply), the timeout of a call, and how long an
#: update is called again (same update_id) after errors and timeouts before the caller gives up.
UPDATE_THREADS = 6
UPDATE_TIMEOUT = 10.0
UPDATE_PATIENCE = 60.0


@dataclass
class Event:
    offset: float  # seconds after the start committed
    action: str  # signal | cancel
    name: str = ""  # the signal's name
    count: int = 1  # signals in this event
    same_tx: bool = False  # all of them in one transaction
    late: bool = False  # sent when the run may have finished (a refusal is expected)
    #: A cancel held back until the named step's attempt runs (polled; sent anyway after ``MID_STEP_PATIENCE``).
    mid_step: str = ""
    #: An update (action "update"): its amount (not a positive int: rejected), its first call's timeout
    #: (0: that call times out, and the update is called again with its id), and whether it is sent
    #: once more with its update_id after its reply (the first reply must come back, applied once).
    amount: int = 0
    timeout: float = UPDATE_TIMEOUT
    resend: bool = False


@dataclass
class ComposedPlan:
    index: int
    ref: str
    kind: str
    args: list[Any]
    start_at: float
    events: list[Event]
    #: Signals sent in the start's own transaction (names).
    in_start: list[str] = field(default_factory=list)
    order_id: int | None = None
    #: The run's time limit in seconds (``using(timeout=...)``), or None.
    timeout: float | None = None
    # What happened.
    outcome: str = "planned"  # committed | failed_to_start
    run_id: str | None = None
    signals: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)  # committed | refused_finished | failed: ...
    waited: dict[int, float] = field(default_factory=dict)  # seconds a mid-step cancel has waited, per event
    #: One record per update: update_id, amount, late, resend, and each call with what it returned.
    updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cancel_committed(self) -> bool:
        return "committed" in self.cancels


def _bursts(rng: random.Random, low: float, high: float) -> list[Event]:
    events = []
    for _ in range(rng.randint(1, 3)):
        events.append(
            Event(round(rng.uniform(low, high), 2), "signal", "submit", rng.randint(1, 3), rng.random() < 0.5)
        )
    return events


def _loop(rng: random.Random, nth: int) -> tuple[list[Any], list[Event], list[str]]:
    style = rng.choice(["timer", "timeout"])
    # By turn, not by chance: a short run has a signal in the start's transaction and a loop that idles out.
    in_start = ["submit"] if nth % 3 == 1 else []
    events: list[Event] = []
    if rng.random() < 0.3:
        events.append(Event(0.0, "signal", "submit"))  # right after the start: before the run reaches its wait
    if nth % 4 != 3:  # told to exit: a long idle timeout that should never fire
        events += _bursts(rng, 0.1, 4.0)
        last = max(event.offset for event in events)
        close = rng.random() < 0.4  # the exit right behind the last submit
        events.append(Event(last if close else round(last + rng.uniform(0.1, 1.5), 2), "signal", "exit"))
        if rng.random() < 0.15:
            events.append(Event(round(last + 3.0, 2), "signal", "submit", late=True))
        return [LOOP_LONG_IDLE, style], events, in_start
    idle = round(rng.uniform(1.5, 3.0), 2)  # idles out: submits early, one more around the timeout
    events += _bursts(rng, 0.1, 1.2)
    events.append(Event(round(idle + rng.uniform(0.5, 2.0), 2), "signal", "submit", late=True))
    return [idle, style], events, in_start


def _cancels(rng: random.Random, cancel: bool, high: float) -> list[Event]:
    if not cancel:
        return []
    first = 0.0 if rng.random() < 0.15 else round(rng.uniform(0.0, high), 2)
    events = [Event(first, "cancel")]
    if rng.random() < 0.15:
        events.append(Event(round(first + 0.3, 2), "cancel", late=True))  # only the first counts
    return events


def _counter(rng: random.Random, nth: int, ref: str) -> tuple[list[Any], list[Event]]:
    """Four to eight updates in the first 2 s, some at the same moment; its idle timeout is longer than any gap."""
    idle = round(rng.uniform(3.0, 5.0), 2)
    events = [
        Event(round(rng.uniform(0.0, 2.0), 2), "update", "add", amount=rng.randint(1, 100))
        for _ in range(rng.randint(4, 8))
    ]
    # By turn, not by chance: every counter has a call that times out (then is called again with its
    # update_id), an update sent again after its reply, a rejected one, and two sent at the same moment.
    events[0].timeout = 0.0
    events[1].resend = True
    events[2].amount = -events[2].amount if rng.random() < 0.7 else 0
    events[3].offset = events[1].offset
    if nth % 2 == 1:  # one more around the idle timeout: taken, left unread, or refused (RunFinished)
        last = max(event.offset for event in events)
        events.append(
            Event(round(last + idle + rng.uniform(0.0, 2.5), 2), "update", "add", amount=rng.randint(1, 100), late=True)
        )
    return [ref, idle], events


def make_composed_plans(count: int, seed: int, start_window: float) -> list[ComposedPlan]:
    """``count`` composed plans, their starts spread over ``start_window`` seconds (offset from the orders')."""
    rng = random.Random(seed * 7919 + 13)
    # Kinds by quota and the cancels and stops by turn within a kind, so a short run has them all.
    kinds = [kind for kind, share in KINDS.items() for _ in range(int(share * count))]
    kinds = (kinds + ["loop"] * count)[:count]
    rng.shuffle(kinds)
    turn: Counter[str] = Counter()
    plans = []
    for index, kind in enumerate(kinds):
        nth = turn[kind]
        turn[kind] += 1
        ref = f"{kind}-{seed}-{index}"
        start_at = start_window * (index + 0.5) / max(1, count)
        plan = ComposedPlan(index, ref, kind, [], start_at, [])
        if kind == "loop":
            plan.args, plan.events, plan.in_start = _loop(rng, nth)
        elif kind == "saga":
            magic = rng.random()
            ending = 1 if magic < 0.05 else 2 if magic < 0.10 else 3 if magic < 0.15 else rng.randrange(10, 100)
            if nth % 5 in (1, 3):  # cancelled (below): any ending
                fail = rng.choices(["", "fail", "flaky"], [0.6, 0.2, 0.2])[0]
            else:  # by turn, so a short run has a saga that fails, one that retries and one that completes
                fail = {0: "", 2: "fail", 4: "flaky"}[nth % 5]
            plan.order_id = SAGA_ORDER_BASE + seed % 1000 * 10_000 + index
            approval = nth % 10 == 5  # waits for an approval no one sends: its deadline ends it (by turn)
            if approval and ending == 1:  # a declined card would fail it before its deadline
                ending = 11
            amount = rng.randrange(5, 200) * 100 + ending
            work = round(rng.uniform(0.5, 2.0), 2)
            plan.args = [ref, plan.order_id, amount, round(rng.uniform(0.1, 0.5), 2), fail, work, approval]
            if approval:
                plan.timeout = round(rng.uniform(*TIGHT_DEADLINE), 2)
            elif nth % 10 == 0:  # a deadline it meets
                plan.timeout = LOOSE_DEADLINE
            plan.events = _cancels(rng, nth % 5 in (1, 3), 2.5)
            if nth % 5 == 3:  # this one lands while the reservation's attempt runs
                plan.events[0].offset, plan.events[0].mid_step = 0.0, "chaos.shop.composed.reserve"
        elif kind == "family":
            seconds = [round(rng.uniform(0.2, 2.0), 2) for _ in range(rng.randint(2, 4))]
            plan.args = [ref, rng.choice(["all", "any"]), seconds]
            plan.events = _cancels(rng, nth % 3 == 1, 1.5)
        elif kind == "ballot":
            voters = rng.randint(101, 130) if nth % 4 == 1 else rng.randint(2, 20)
            plan.args = [voters, 30.0]
            plan.in_start = ["vote"] * min(rng.randint(0, voters), 5)
            rest = voters - len(plan.in_start)
            if rest:
                plan.events.append(Event(round(rng.uniform(0.0, 1.0), 2), "signal", "vote", rest, same_tx=rest > 5))
            if nth % 3 == 2:  # one vote too many: it stays unread
                plan.events.append(Event(round(rng.uniform(0.0, 1.5), 2), "signal", "vote"))
        elif kind == "counter":
            plan.args, plan.events = _counter(rng, nth, ref)
        else:
            plan.args = [ref, rng.randint(2, 4), round(rng.uniform(0.3, 1.0), 2), []]
            if nth % 3 == 2:
                offset = round(rng.uniform(0.5, 4.0), 2)
                plan.events.append(Event(offset, "signal", "stop"))
                if rng.random() < 0.3:
                    plan.events.append(Event(offset, "signal", "stop"))  # the second stays unread
            plan.events += _cancels(rng, nth % 4 == 1, 2.0)
        plans.append(plan)
    return plans


def workflow_of(kind: str) -> Any:
    from .shop import composed

    return {
        "loop": composed.signal_loop,
        "saga": composed.saga,
        "family": composed.family,
        "subscription": composed.subscription,
        "ballot": composed.ballot,
        "counter": composed.counter,
    }[kind]


class ComposedDriver:
    """Acts the composed plans out: one thread, a heap of (due, tiebreak, plan index, event)."""

    def __init__(self, plans: list[ComposedPlan], t0: float) -> None:
        self.plans = plans
        self.t0 = t0
        self.stop = threading.Event()
        self.done = threading.Event()
        self.errors: list[str] = []
        self._heap: list[tuple[float, int, int, Event | None]] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._sent = 0  # the order signals were sent in (one sender: commit order)
        self._pool = ThreadPoolExecutor(UPDATE_THREADS, thread_name_prefix="updates")
        self._in_flight = 0  # updates handed to the pool and not finished
        for plan in plans:
            self._push(t0 + plan.start_at, plan.index, None)

    def _push(self, due: float, index: int, event: Event | None) -> None:
        with self._lock:
            self._counter += 1
            heapq.heappush(self._heap, (due, self._counter, index, event))

    def pending_actions(self) -> int:
        with self._lock:
            return len(self._heap) + self._in_flight

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                with self._lock:
                    if not self._heap:
                        break
                    due, _, index, event = self._heap[0]
                    item = None if due > time.monotonic() else heapq.heappop(self._heap)
                if item is None:
                    time.sleep(min(0.05, max(0.0, due - time.monotonic())))
                    continue
                plan = self.plans[index]
                if event is None:
                    self._start(plan)
                elif plan.outcome == "committed":
                    self._act(plan, event)
        except Exception as error:
            self.errors.append(f"composed driver: {type(error).__name__}: {error}")
            logger.exception("composed driver failed")
        finally:
            with self._lock:
                self._heap.clear()
            self._pool.shutdown(wait=True)  # the updates in flight end within UPDATE_PATIENCE
            self.done.set()
            connection.close()

    # Starting.
    def _start(self, plan: ComposedPlan) -> None:
        from durable_django.models import WorkflowRun

        workflow = workflow_of(plan.kind)
        if plan.timeout is not None:  # its deadline: the database's clock at the start plus this
            workflow = workflow.using(timeout=timedelta(seconds=plan.timeout))
        deadline = time.monotonic() + 60
        records = [self._record(plan, name, early=True) for name in plan.in_start]
        while True:
            try:
                with transaction.atomic():
                    run = workflow.start(*plan.args, workflow_id=plan.ref)
                    for record in records:
                        self._send_one(plan, record)
                plan.outcome, plan.run_id = "committed", str(run.pk)
                break
            except (OperationalError, InterfaceError) as error:
                connection.close()
                found = with_retries(
                    lambda: WorkflowRun.objects.filter(workflow_id=plan.ref).values_list("pk", flat=True).first(),
                    what=f"resolve start {plan.ref}",
                    deadline=deadline,
                )
                if found is not None:
                    plan.outcome, plan.run_id = "committed", str(found)
                    break
                if time.monotonic() > deadline:
                    plan.outcome = "failed_to_start"
                    self.errors.append(f"start {plan.ref}: {error}")
                    return
                time.sleep(0.2)
        for record in records:
            record["outcome"] = "committed"
        self._stamp(records)
        began = time.monotonic()
        for event in plan.events:
            self._push(began + event.offset, plan.index, event)

    # Acting.
    def _act(self, plan: ComposedPlan, event: Event) -> None:
        if event.action == "update":
            record = {"update_id": f"{plan.ref}-u{len(plan.updates)}", "amount": event.amount, "late": event.late}
            record.update(resend=event.resend, first_timeout=event.timeout, calls=[])
            plan.updates.append(record)
            with self._lock:
                self._in_flight += 1
            self._pool.submit(self._update, plan, record)
            return
        if event.action == "cancel":
            if event.mid_step and not self._attempt_running(plan, event):
                return
            self._cancel(plan)
            return
        if event.same_tx:
            self._signals(plan, [self._record(plan, event.name, late=event.late) for _ in range(event.count)])
        else:
            for _ in range(event.count):
                self._signals(plan, [self._record(plan, event.name, late=event.late)])

    def _attempt_running(self, plan: ComposedPlan, event: Event) -> bool:
        """True once the event's step has an attempt running; else it is pushed back a little (bounded)."""
        from durable_django.models import HistoryEntry

        assert plan.run_id is not None  # its events are pushed only once its start committed
        waited = plan.waited.get(id(event), 0.0)
        if waited < MID_STEP_PATIENCE:
            try:
                running = HistoryEntry.objects.filter(
                    run_id=uuid.UUID(plan.run_id), name=event.mid_step, status="scheduled", attempts__gte=1
                ).exists()
                pause = 0.1
            except DatabaseError:  # the database is restarting: look again a little later
                connection.close()
                running, pause = False, 0.5
            if not running:
                plan.waited[id(event)] = waited + pause
                self._push(time.monotonic() + pause, plan.index, event)
                return False
        return True

    def _record(self, plan: ComposedPlan, name: str, *, early: bool = False, late: bool = False) -> dict[str, Any]:
        self._sent += 1
        record = {"nonce": uuid.uuid4().hex, "name": name, "early": early, "late": late, "order": self._sent}
        record["outcome"] = ""
        plan.signals.append(record)
        return record

    @staticmethod
    def _send_one(plan: ComposedPlan, record: dict[str, Any]) -> None:
        import durable_django as durable

        from .shop.models import SignalReceipt

        SignalReceipt.objects.create(nonce=record["nonce"], ref=plan.ref, action=record["name"], early=record["early"])
        durable.signal(plan.ref, record["name"], {"nonce": record["nonce"]})

    def _signals(self, plan: ComposedPlan, records: list[dict[str, Any]]) -> None:
        """Send ``records`` in one transaction; resolve an unknown commit by the receipts."""
        import durable_django as durable

        from .shop.models import SignalReceipt

        deadline = time.monotonic() + 60
        while True:
            try:
                with transaction.atomic():
                    for record in records:
                        self._send_one(plan, record)
                outcome = "committed"
                break
            except durable.RunFinished:
                outcome = "refused_finished"
                break
            except (OperationalError, InterfaceError, DatabaseError) as error:
                connection.close()
                nonce = records[0]["nonce"]
                exists = with_retries(
                    lambda: SignalReceipt.objects.filter(nonce=nonce).exists(),  # noqa: B023
                    what=f"resolve signal {nonce}",
                    deadline=deadline,
                )
                if exists:
                    outcome = "committed"
                    break
                if time.monotonic() > deadline:
                    outcome = f"failed: {error}"
                    self.errors.append(f"signal {plan.ref}: {error}")
                    break
                time.sleep(0.2)
        for record in records:
            record["outcome"] = outcome
        if outcome == "committed":
            self._stamp(records)

    @staticmethod
    def _stamp(records: list[dict[str, Any]]) -> None:
        from .shop.models import SignalReceipt

        if not records:
            return
        nonces = [record["nonce"] for record in records]
        try:  # only a bound for one check, which skips a signal without it
            with_retries(
                lambda: SignalReceipt.objects.filter(nonce__in=nonces).update(committed_at=Now()),
                what="stamp signals",
                deadline=time.monotonic() + 30,
            )
        except DatabaseError:
            connection.close()

    def _cancel(self, plan: ComposedPlan) -> None:
        import durable_django as durable

        def cancel() -> None:
            with transaction.atomic():
                durable.cancel(plan.ref)

        try:
            with_retries(cancel, what=f"cancel {plan.ref}", deadline=time.monotonic() + 60)
            plan.cancels.append("committed")
        except durable.RunFinished:
            plan.cancels.append("refused_finished")
        except DatabaseError as error:
            plan.cancels.append(f"failed: {error}")
            self.errors.append(f"cancel {plan.ref}: {error}")

    def _update(self, plan: ComposedPlan, record: dict[str, Any]) -> None:
        """Send one update and wait for its answer; after an error or a timeout, call again with its update_id."""
        try:
            replied = self._call(plan, record, record["first_timeout"])
            if record["resend"] and replied:  # the same id again: the first reply, nothing applied again
                self._call(plan, record, UPDATE_TIMEOUT, resend=True)
        except Exception as error:
            self.errors.append(f"update {record['update_id']}: {type(error).__name__}: {error}")
            logger.exception("update %s failed", record["update_id"])
        finally:
            connection.close()
            with self._lock:
                self._in_flight -= 1

    def _call(self, plan: ComposedPlan, record: dict[str, Any], timeout: float, *, resend: bool = False) -> bool:
        """Call ``run.update()`` until it answers (or refuses), recording each call; whether it replied."""
        import psycopg

        import durable_django as durable

        deadline = time.monotonic() + UPDATE_PATIENCE
        while True:
            call: dict[str, Any] = {"resend": resend, "at": round(time.monotonic() - self.t0, 3)}
            record["calls"].append(call)
            try:
                run = durable.get_run(plan.ref)
                reply = run.update("add", {"amount": record["amount"]}, timeout=timeout, update_id=record["update_id"])
                call.update(outcome="replied", reply=reply)
                return True
            except durable.UpdateRejected as error:
                call.update(outcome="rejected", reason=error.reason)
                return False
            except durable.RunFinished:
                call["outcome"] = "refused_finished"
                return False
            except durable.UpdateTimeout:
                call["outcome"] = "timeout"
            except (DatabaseError, psycopg.Error) as error:  # the listener's own connection raises psycopg's
                connection.close()
                call["outcome"] = f"error: {type(error).__name__}"
            if time.monotonic() > deadline or self.stop.is_set():
                return False
            timeout = UPDATE_TIMEOUT
            time.sleep(0.2)
