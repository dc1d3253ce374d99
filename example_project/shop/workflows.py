"""The checkout: charge the card at the provider, then mark the order paid."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F

import durable_django as durable

from . import payments
from .models import Order


@durable.step(
    retry=durable.RetryPolicy(max_attempts=8, initial_interval=timedelta(milliseconds=200)),
    timeout=timedelta(seconds=5),
)
def charge_card(order_id: int, amount_cents: int) -> dict:
    key = durable.step_context().idempotency_key  # the same on every attempt
    return payments.charge(amount_cents, idempotency_key=key, reference=f"order-{order_id}")


# One short transaction; its timeout also bounds how long a crashed worker's lease holds the run.
@durable.step(atomic=True, timeout=timedelta(seconds=5))  # commits with the step's result: exactly once
def mark_paid(order_id: int, charge_id: str) -> None:
    Order.objects.filter(pk=order_id).update(
        status=Order.Status.PAID, charge_id=charge_id, paid_writes=F("paid_writes") + 1
    )


@durable.workflow
def checkout(order_id: int, amount_cents: int):
    charge = yield charge_card(order_id, amount_cents)
    yield mark_paid(order_id, charge["id"])
    return {"charge": charge["id"]}
