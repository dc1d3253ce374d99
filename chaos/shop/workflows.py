"""The order workflow, written as an application would write it.

Charge the card (with the step's idempotency key), mark the order paid atomically, send a
confirmation, sleep, then wait for a decision signal with a timeout: ship, or refund on a
"cancel" decision, on the timeout, or on ``run.cancel()``.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any, TypeAlias

from django.db.models import F

import durable_django as durable

from . import payments
from .models import Order

#: Up to ten attempts over about twenty seconds: enough to outlast a database or broker restart.
RETRY = durable.RetryPolicy(
    max_attempts=10,
    initial_interval=timedelta(milliseconds=100),
    maximum_interval=timedelta(seconds=3),
    non_retryable=(payments.CardDeclined, payments.ProviderRefused),
)
TIMEOUT = timedelta(seconds=5)
#: A workflow function: it yields requests, is sent their results and returns a JSON object.
Workflow: TypeAlias = Generator[Any, Any, dict[str, Any]]


def key() -> str:
    return durable.step_context().idempotency_key


@durable.step(retry=RETRY, timeout=TIMEOUT)
def charge_card(order_id: int, amount_cents: int) -> dict[str, Any]:
    return payments.charge(order_id, amount_cents, idempotency_key=key())


@durable.step(atomic=True, retry=RETRY, timeout=TIMEOUT)
def mark_paid(order_id: int, charge_id: str) -> None:
    Order.objects.filter(pk=order_id).update(
        status=Order.Status.PAID, charge_id=charge_id, paid_writes=F("paid_writes") + 1
    )


@durable.step(atomic=True, retry=RETRY, timeout=TIMEOUT)
def mark_declined(order_id: int) -> None:
    Order.objects.filter(pk=order_id).update(status=Order.Status.DECLINED, declined_writes=F("declined_writes") + 1)


@durable.step(retry=RETRY, timeout=TIMEOUT)
def send_confirmation(order_id: int) -> str:
    email: dict[str, Any] = payments.send_email(order_id, "confirmation", idempotency_key=key())
    email_id: str = email["id"]
    return email_id


@durable.step(atomic=True, retry=RETRY, timeout=TIMEOUT)
def mark_shipped(order_id: int, nonce: str) -> None:
    Order.objects.filter(pk=order_id).update(
        status=Order.Status.SHIPPED, shipped_by=nonce, shipped_writes=F("shipped_writes") + 1
    )


@durable.step(retry=RETRY, timeout=TIMEOUT)
def refund_charge(order_id: int, charge_id: str) -> dict[str, Any]:
    return payments.refund(order_id, charge_id, idempotency_key=key())


@durable.step(atomic=True, retry=RETRY, timeout=TIMEOUT)
def mark_refunded(order_id: int, refund_id: str, reason: str) -> None:
    Order.objects.filter(pk=order_id).update(
        status=Order.Status.REFUNDED,
        refund_id=refund_id,
        refund_reason=reason,
        refunded_writes=F("refunded_writes") + 1,
    )


@durable.workflow
def place_order(order_id: int, amount_cents: int, sleep_seconds: float, wait_seconds: float) -> Workflow:
    try:
        charge = yield charge_card(order_id, amount_cents)
    except durable.StepFailed as failure:
        if failure.error_type != f"{payments.CardDeclined.__module__}.CardDeclined":
            raise
        yield mark_declined(order_id)
        return {"status": "declined"}
    yield mark_paid(order_id, charge["id"])
    try:
        yield send_confirmation(order_id)
        yield durable.sleep(timedelta(seconds=sleep_seconds))
        decision = yield durable.wait_signal("decision", timeout=timedelta(seconds=wait_seconds))
    except durable.Cancelled:
        refund = yield refund_charge(order_id, charge["id"])
        yield mark_refunded(order_id, refund["id"], "cancelled")
        raise
    if decision is not None and decision["action"] == "ship":
        yield mark_shipped(order_id, decision["nonce"])
        return {"status": "shipped", "charge": charge["id"], "signal": decision["nonce"]}
    reason = "timeout" if decision is None else "cancel-signal"
    refund = yield refund_charge(order_id, charge["id"])
    yield mark_refunded(order_id, refund["id"], reason)
    return {
        "status": "refunded",
        "reason": reason,
        "charge": charge["id"],
        "refund": refund["id"],
        "signal": None if decision is None else decision["nonce"],
    }


# The composed workload's workflows are discovered with this module's.
from . import composed  # noqa: E402, F401
