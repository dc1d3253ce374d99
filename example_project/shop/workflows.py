"""The checkout: charge the card, let a cooling-off period pass, then wait for the warehouse to ship.

Cancelled, or not shipped in time, the order is refunded. A cancel that lands while the card is
being charged lets that attempt finish, then raises ``Cancelled`` at its yield: the compensation
does not have the charge's reply, so it refunds by the order's reference, which the provider
knows whether or not the charge went through (tests/integration/test_checkout.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F

import durable_django as durable

from . import payments
from .models import Order

# A refused payment (payments.PaymentError) will not succeed on retry: fail the step at once.
PROVIDER_RETRY = durable.RetryPolicy(
    max_attempts=8, initial_interval=timedelta(milliseconds=200), non_retryable=(payments.PaymentError,)
)


@durable.step(retry=PROVIDER_RETRY, timeout=timedelta(seconds=5))
def charge_card(order_id: int, amount_cents: int) -> dict:
    key = durable.step_context().idempotency_key  # the same on every attempt
    return payments.charge(amount_cents, idempotency_key=key, reference=f"order-{order_id}")


@durable.step(retry=PROVIDER_RETRY, timeout=timedelta(seconds=5))
def refund_order(order_id: int) -> dict | None:
    """Refund what was charged for this order; None if the card was never charged."""
    key = durable.step_context().idempotency_key
    return payments.refund_reference(f"order-{order_id}", idempotency_key=key)


# Atomic steps commit with the step's result: their writes happen exactly once. One short
# transaction each; the timeout also bounds how long a crashed worker's lease holds the run.
@durable.step(atomic=True, timeout=timedelta(seconds=5))
def mark_paid(order_id: int, charge_id: str) -> None:
    Order.objects.filter(pk=order_id).update(
        status=Order.Status.PAID, charge_id=charge_id, paid_writes=F("paid_writes") + 1
    )


@durable.step(atomic=True, timeout=timedelta(seconds=5))
def mark_shipped(order_id: int, carrier: str) -> None:
    Order.objects.filter(pk=order_id).update(status=Order.Status.SHIPPED, carrier=carrier)


@durable.step(atomic=True, timeout=timedelta(seconds=5))
def mark_refunded(order_id: int, refund_id: str) -> None:
    Order.objects.filter(pk=order_id).update(
        status=Order.Status.REFUNDED, refund_id=refund_id, refund_writes=F("refund_writes") + 1
    )


@durable.workflow
def checkout(order_id: int, amount_cents: int, cooling_off_seconds: int = 3600, ship_within_days: int = 7):
    try:
        charge = yield charge_card(order_id, amount_cents)
        yield mark_paid(order_id, charge["id"])
        yield durable.set_state("cooling off")  # run.state, for the order page
        yield durable.sleep(timedelta(seconds=cooling_off_seconds))  # no worker held while it sleeps
        yield durable.set_state("awaiting shipment")
        shipment = yield durable.wait_signal("shipped", timeout=timedelta(days=ship_within_days))  # None on timeout
        if shipment is not None:
            yield mark_shipped(order_id, shipment["carrier"])
            return {"charge": charge["id"], "carrier": shipment["carrier"]}
    except durable.Cancelled:  # run.cancel() raises it at the yield the run is waiting on, charge_card's too
        refund = yield refund_order(order_id)
        if refund is not None:
            yield mark_refunded(order_id, refund["id"])
        raise  # the run ends cancelled
    # Not shipped in time: give the money back.
    refund = yield refund_order(order_id)
    yield mark_refunded(order_id, refund["id"])
    return {"charge": charge["id"], "refund": refund["id"]}
