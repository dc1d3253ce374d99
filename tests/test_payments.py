"""The fake payment provider behaves like a real one: one charge and one refund per idempotency key."""

from __future__ import annotations

import pytest

from example_project.shop import payments

pytestmark = pytest.mark.usefixtures("ledger")


@pytest.fixture(autouse=True)
def _instant_provider(settings):
    settings.PAYMENTS_LATENCY = 0


def test_a_refund_is_idempotent_per_key_and_recorded_in_the_ledger():
    charge = payments.charge(1999, idempotency_key="c1", reference="order-1")
    first = payments.refund(charge["id"], idempotency_key="r1")
    again = payments.refund(charge["id"], idempotency_key="r1")
    assert first == again == {"id": first["id"], "charge_id": charge["id"], "amount_cents": 1999, "status": "succeeded"}
    assert payments.refunds() == [
        {
            "idempotency_key": "r1",
            "refund_id": first["id"],
            "charge_id": charge["id"],
            "amount_cents": 1999,
            "requests": 2,
        }
    ]
    assert len(payments.ledger()) == 1


def test_a_charge_is_refunded_once_whatever_the_key():
    charge = payments.charge(500, idempotency_key="c1", reference="order-1")
    first = payments.refund(charge["id"], idempotency_key="r1")
    with pytest.raises(
        payments.RefundRefused, match=f"charge {charge['id']} has already been refunded \\({first['id']}"
    ):
        payments.refund(charge["id"], idempotency_key="r2")
    assert [refund["idempotency_key"] for refund in payments.refunds()] == ["r1"]


def test_refunding_an_unknown_charge_is_refused():
    with pytest.raises(payments.RefundRefused, match="no such charge: ch_nope"):
        payments.refund("ch_nope", idempotency_key="r1")
    assert payments.refunds() == []


def test_a_refund_key_reused_for_another_charge_is_refused():
    one = payments.charge(500, idempotency_key="c1", reference="order-1")
    two = payments.charge(600, idempotency_key="c2", reference="order-2")
    payments.refund(one["id"], idempotency_key="r1")
    with pytest.raises(payments.IdempotencyKeyReused, match=f"key r1 was used to refund {one['id']}, not {two['id']}"):
        payments.refund(two["id"], idempotency_key="r1")
    assert len(payments.refunds()) == 1


def test_refusals_are_payment_errors_that_a_retry_cannot_fix():
    assert issubclass(payments.RefundRefused, payments.PaymentError)
    assert issubclass(payments.IdempotencyKeyReused, payments.PaymentError)
