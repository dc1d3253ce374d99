"""A fake payment provider that behaves like a real one (Stripe-style idempotency keys).

It keeps its own ledger in a separate SQLite file, outside the workflow's database and
transactions, like a real provider would. The same key returns the saved charge or refund;
the same key with different parameters is refused; a charge is refunded at most once;
the money moves before the (slow) response, so a worker killed in between leaves a
charge or a refund that the retry must not repeat.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import closing

from django.conf import settings


class PaymentError(Exception):
    """The provider refused the request; sending it again will not help."""


class IdempotencyKeyReused(PaymentError):
    """The same idempotency key was sent with different parameters."""


class RefundRefused(PaymentError):
    """The charge is unknown, or it was already refunded (under another idempotency key)."""


def _connect() -> sqlite3.Connection:
    connection = sqlite3.connect(settings.PAYMENTS_LEDGER, timeout=30, isolation_level=None)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS charges (idempotency_key TEXT PRIMARY KEY, charge_id TEXT NOT NULL UNIQUE, "
        "reference TEXT NOT NULL, amount_cents INTEGER NOT NULL, requests INTEGER NOT NULL)"
    )
    connection.execute(
        "CREATE TABLE IF NOT EXISTS refunds (idempotency_key TEXT PRIMARY KEY, refund_id TEXT NOT NULL UNIQUE, "
        "charge_id TEXT NOT NULL UNIQUE, amount_cents INTEGER NOT NULL, requests INTEGER NOT NULL)"
    )
    return connection


def charge(amount_cents: int, *, idempotency_key: str, reference: str) -> dict:
    """Charge once per key; a repeated key gets the first response back."""
    time.sleep(settings.PAYMENTS_LATENCY / 2)
    with closing(_connect()) as connection:
        connection.execute("BEGIN IMMEDIATE")
        row = connection.execute(
            "SELECT charge_id, amount_cents FROM charges WHERE idempotency_key = ?", (idempotency_key,)
        ).fetchone()
        if row is None:
            charge_id = f"ch_{uuid.uuid4().hex[:16]}"
            connection.execute(
                "INSERT INTO charges VALUES (?, ?, ?, ?, 1)", (idempotency_key, charge_id, reference, amount_cents)
            )
        else:
            charge_id, saved_amount = row
            if saved_amount != amount_cents:
                connection.execute("ROLLBACK")
                raise IdempotencyKeyReused(f"key {idempotency_key} was used for {saved_amount}, not {amount_cents}")
            connection.execute(
                "UPDATE charges SET requests = requests + 1 WHERE idempotency_key = ?", (idempotency_key,)
            )
        connection.execute("COMMIT")
    time.sleep(settings.PAYMENTS_LATENCY / 2)  # the response is still on its way when a worker may die
    return {"id": charge_id, "amount_cents": amount_cents, "status": "succeeded"}


def refund(charge_id: str, *, idempotency_key: str) -> dict:
    """Refund a charge in full, once per key; a repeated key gets the first response back.

    Refused: an unknown charge, a charge already refunded under another key, a key already
    used to refund another charge.
    """
    time.sleep(settings.PAYMENTS_LATENCY / 2)
    with closing(_connect()) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            refund_id, amount_cents = _refund(connection, charge_id, idempotency_key)
        except PaymentError:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    time.sleep(settings.PAYMENTS_LATENCY / 2)  # the response is still on its way when a worker may die
    return {"id": refund_id, "charge_id": charge_id, "amount_cents": amount_cents, "status": "succeeded"}


def refund_reference(reference: str, *, idempotency_key: str) -> dict | None:
    """Refund the charge made under ``reference``, if there is one (None if not), once per key.

    Compensation uses it when it cannot know whether a charge went through (a cancel that
    landed while the card was being charged): the provider knows.
    """
    time.sleep(settings.PAYMENTS_LATENCY / 2)
    with closing(_connect()) as connection:
        connection.execute("BEGIN IMMEDIATE")
        row = connection.execute("SELECT charge_id FROM charges WHERE reference = ?", (reference,)).fetchone()
        if row is None:
            connection.execute("COMMIT")
            return None
        try:
            refund_id, amount_cents = _refund(connection, row[0], idempotency_key)
        except PaymentError:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    time.sleep(settings.PAYMENTS_LATENCY / 2)
    return {"id": refund_id, "charge_id": row[0], "amount_cents": amount_cents, "status": "succeeded"}


def _refund(connection: sqlite3.Connection, charge_id: str, idempotency_key: str) -> tuple[str, int]:
    row = connection.execute(
        "SELECT refund_id, charge_id, amount_cents FROM refunds WHERE idempotency_key = ?", (idempotency_key,)
    ).fetchone()
    if row is not None:
        refund_id, saved_charge, amount_cents = row
        if saved_charge != charge_id:
            raise IdempotencyKeyReused(f"key {idempotency_key} was used to refund {saved_charge}, not {charge_id}")
        connection.execute("UPDATE refunds SET requests = requests + 1 WHERE idempotency_key = ?", (idempotency_key,))
        return refund_id, amount_cents
    amount = connection.execute("SELECT amount_cents FROM charges WHERE charge_id = ?", (charge_id,)).fetchone()
    if amount is None:
        raise RefundRefused(f"no such charge: {charge_id}")
    earlier = connection.execute("SELECT refund_id FROM refunds WHERE charge_id = ?", (charge_id,)).fetchone()
    if earlier is not None:
        raise RefundRefused(f"charge {charge_id} has already been refunded ({earlier[0]})")
    refund_id = f"re_{uuid.uuid4().hex[:16]}"
    connection.execute("INSERT INTO refunds VALUES (?, ?, ?, ?, 1)", (idempotency_key, refund_id, charge_id, amount[0]))
    return refund_id, amount[0]


def ledger() -> list[dict]:
    """Every charge applied, with how many requests carried its key."""
    with closing(_connect()) as connection:
        rows = connection.execute("SELECT idempotency_key, charge_id, reference, amount_cents, requests FROM charges")
        return [
            {"idempotency_key": k, "charge_id": c, "reference": r, "amount_cents": a, "requests": n}
            for k, c, r, a, n in rows
        ]


def refunds() -> list[dict]:
    """Every refund applied, with how many requests carried its key."""
    with closing(_connect()) as connection:
        rows = connection.execute("SELECT idempotency_key, refund_id, charge_id, amount_cents, requests FROM refunds")
        return [
            {"idempotency_key": k, "refund_id": r, "charge_id": c, "amount_cents": a, "requests": n}
            for k, r, c, a, n in rows
        ]


def reset() -> None:
    with closing(_connect()) as connection:
        connection.execute("DELETE FROM charges")
        connection.execute("DELETE FROM refunds")
