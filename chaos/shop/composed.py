"""The composed workload's workflows: request kinds combined the way applications combine them.

- ``signal_loop``: ``any_of`` over a "submit" wait, an "exit" wait and an idle timer (or a
  "submit" wait with a timeout), in a bounded loop, with a step between some rounds; it
  publishes how many submits it took with ``set_state`` after each one.
- ``saga``: a charge at the fake payment API, a hold (sleep), a reservation that takes 0.5
  to 2 s (heartbeating, so a cancel stops it early) and may fail;
  compensation (a refund by the order's reference, behind a ``patched`` marker) and a
  cleanup step in ``finally``. A cancel can land at any of its yields, the compensation's and
  the cleanup's included: a ``Cancelled`` caught there is remembered, the request is asked
  again (nothing cancels it a second time) and the cancel re-raised at the end. Some run
  under a deadline (``using(timeout=...)``); those that wait for an approval no one sends
  can only end by it: ``DeadlineExceeded`` at that wait, then the same compensation.
- ``family``: a parent with children in ``all_of`` or ``any_of``; ``errand`` is the child.
- ``ballot``: ``all_of`` of one "vote" wait (with a deadline) per voter, up to 130 of
  them, with the votes buffered in the inbox (more than one page of it) before or while
  the group opens.
- ``subscription``: a child per cycle (``renew``), then ``any_of`` of a "stop" signal and a
  short period, then ``continue_as_new`` with what it billed.
- ``counter``: takes "add" updates (``wait_update`` with an idle timeout) and replies to each
  with the new total, or rejects an amount that is not a positive int; it ends when no update
  came for its idle time, with the total and the update ids it applied, in order.

Every signal payload carries the harness's nonce, and every result says what the run took,
so the checker can hold each run to what the driver sent (chaos/composed_checker.py).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import durable_django as durable

from . import payments
from .models import CleanupLog
from .workflows import RETRY, TIMEOUT, Workflow, charge_card, key

#: A loop ends after this many rounds whatever arrives (then its result says "full"); so does a counter.
LOOP_ROUNDS = 40
COUNTER_ROUNDS = 100
#: The change id of the saga's compensation, as a deploy that added it would name it.
REFUND_PATCH = "refund-by-reference"


class OutOfStock(Exception):
    """The saga's reservation fails for good: the saga compensates."""


class Flaky(Exception):
    """A first attempt that fails and is retried."""


STEP_RETRY = durable.RetryPolicy(
    max_attempts=10,
    initial_interval=timedelta(milliseconds=100),
    maximum_interval=timedelta(seconds=3),
    non_retryable=(OutOfStock, payments.CardDeclined, payments.ProviderRefused),
)


@durable.step(retry=STEP_RETRY, timeout=TIMEOUT)
def ack(count: int) -> int:
    return count


@durable.workflow
def signal_loop(idle_seconds: float, style: str) -> Workflow:
    received: list[str] = []
    for _ in range(LOOP_ROUNDS):
        idle = timedelta(seconds=idle_seconds)
        if style == "timer":
            group = durable.any_of(durable.wait_signal("submit"), durable.wait_signal("exit"), durable.sleep(idle))
        else:  # the submit wait carries the timeout itself
            group = durable.any_of(durable.wait_signal("submit", timeout=idle), durable.wait_signal("exit"))
        index, value = yield group
        if index == 1:
            return {"status": "exited", "received": received, "exit": value["nonce"]}
        if index == 2 or value is None:
            return {"status": "idle", "received": received}
        received.append(value["nonce"])
        yield durable.set_state({"received": len(received)})
        if len(received) % 3 == 0:
            yield ack(len(received))
    return {"status": "full", "received": received}


@durable.workflow
def ballot(voters: int, deadline_seconds: float) -> Workflow:
    deadline = timedelta(seconds=deadline_seconds)
    votes = yield durable.all_of(*[durable.wait_signal("vote", timeout=deadline) for _ in range(voters)])
    return {"status": "counted", "received": [vote["nonce"] for vote in votes if vote is not None]}


@durable.step(retry=STEP_RETRY, timeout=TIMEOUT)
def reserve(ref: str, fail: str, work_seconds: float = 0.0) -> str:
    """A reservation that takes a while, heartbeating: a cancel that lands meanwhile stops it early."""
    context = durable.step_context()
    for _ in range(round(work_seconds / 0.1)):
        if context.heartbeat({"ref": ref}):
            return f"stopped-{ref}"
        time.sleep(0.1)
    if fail == "fail":
        raise OutOfStock(f"{ref}: out of stock")
    if fail == "flaky" and durable.step_context().attempt == 1:
        raise Flaky(f"{ref}: first attempt fails")
    return f"reservation-{ref}"


@durable.step(retry=STEP_RETRY, timeout=TIMEOUT)
def refund_order(order_id: int) -> dict[str, Any]:
    return payments.refund_order(order_id, idempotency_key=key())


@durable.step(atomic=True, retry=RETRY, timeout=TIMEOUT)
def cleanup(ref: str) -> None:
    CleanupLog.objects.create(ref=ref, key=key())


@durable.workflow
def saga(
    ref: str,
    order_id: int,
    amount_cents: int,
    hold_seconds: float,
    fail: str,
    work_seconds: float = 0.0,
    approval: bool = False,
) -> Workflow:
    outcome = "completed"
    cancelled: BaseException | None = None
    result: dict[str, Any] = {}
    try:
        charge = yield charge_card(order_id, amount_cents)
        if approval:  # no one sends it: only the run's deadline ends this wait
            yield durable.wait_signal("approve")
        yield durable.sleep(timedelta(seconds=hold_seconds))
        reservation = yield reserve(ref, fail, work_seconds)
        result = {"status": "completed", "charge": charge["id"], "reservation": reservation}
    except durable.StepFailed:
        outcome = "failed"
        raise
    except durable.DeadlineExceeded:  # a Cancelled: told apart first, compensated the same way
        outcome = "deadline"
        raise
    except durable.Cancelled:
        outcome = "cancelled"
        raise
    finally:
        refunded = False
        asked = False
        for _ in range(3):  # Cancelled is raised once: the second pass runs to the end
            try:
                if outcome != "completed" and not refunded:
                    if not asked:  # once: each call of patched() takes a position of its own
                        asked = True
                        yield durable.patched(REFUND_PATCH)
                    # Runs from before the patch (none here) took the old branch, which refunded by the order's
                    # reference too: the marker is the point, recorded with a cancel pending and replayed after kills.
                    yield refund_order(order_id)
                    refunded = True
                yield cleanup(ref)
                break
            except durable.Cancelled as error:  # the cancel landed on the compensation or the cleanup
                outcome, cancelled = "cancelled", error
        if cancelled is not None:
            raise cancelled
    return result


@durable.step(retry=STEP_RETRY, timeout=TIMEOUT)
def errand_step(ref: str, index: int) -> int:
    return index


@durable.workflow
def errand(ref: str, index: int, seconds: float) -> Workflow:
    yield errand_step(ref, index)
    yield durable.sleep(timedelta(seconds=seconds))
    return {"index": index}


@durable.workflow
def family(ref: str, mode: str, seconds: list[float]) -> Workflow:
    children = [errand(ref, index, s) for index, s in enumerate(seconds)]
    if mode == "all":
        results = yield durable.all_of(*children)
        return {"mode": "all", "results": [result["index"] for result in results]}
    index, value = yield durable.any_of(*children)
    return {"mode": "any", "winner": index, "value": value["index"]}


@durable.step(retry=STEP_RETRY, timeout=TIMEOUT)
def renew_step(ref: str, cycle: int) -> int:
    return cycle


@durable.workflow
def renew(ref: str, cycle: int) -> Workflow:
    billed = yield renew_step(ref, cycle)
    return {"cycle": billed}


@durable.workflow
def subscription(ref: str, cycles: int, period: float, billed: list[int]) -> Workflow:
    receipt = yield renew(ref, len(billed))
    billed = [*billed, receipt["cycle"]]
    if len(billed) >= cycles:
        return {"status": "done", "billed": billed}
    index, value = yield durable.any_of(durable.wait_signal("stop"), durable.sleep(timedelta(seconds=period)))
    if index == 0:
        return {"status": "stopped", "billed": billed, "stop": value["nonce"]}
    yield durable.continue_as_new(ref, cycles, period, billed)
    raise AssertionError("continue_as_new does not return: the engine never resumes a generation past it")


@durable.workflow
def counter(ref: str, idle_seconds: float) -> Workflow:
    total = 0
    applied: list[str] = []
    for _ in range(COUNTER_ROUNDS):
        request = yield durable.wait_update("add", timeout=timedelta(seconds=idle_seconds))
        if request is None:  # no update for idle_seconds
            return {"status": "idle", "total": total, "applied": applied}
        amount = (request.payload or {}).get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            yield durable.reject(request, f"amount must be a positive int, not {amount!r}")
            continue
        total += amount
        applied.append(request.update_id)
        yield durable.reply(request, {"total": total, "n": len(applied)})
    return {"status": "full", "total": total, "applied": applied}
