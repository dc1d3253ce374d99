"""A fake payment provider that behaves like a real one (Stripe-style idempotency keys).

It keeps its own ledger in a separate SQLite file, outside the workflow's database and
transactions, like a real provider would. The same key returns the saved charge; the
same key with a different amount is refused; the charge is applied before the (slow)
response, so a worker killed in between leaves a charge the retry must not repeat.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import closing

from django.conf import settings


class IdempotencyKeyReused(Exception):
    """The same idempotency key was sent with different parameters."""


def _connect() -> sqlite3.Connection:
    connection = sqlite3.connect(settings.PAYMENTS_LEDGER, timeout=30, isolation_level=None)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS charges (idempotency_key TEXT PRIMARY KEY, charge_id TEXT NOT NULL, "
        "reference TEXT NOT NULL, amount_cents INTEGER NOT NULL, requests INTEGER NOT NULL)"
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


def ledger() -> list[dict]:
    """Every charge applied, with how many requests carried its key."""
    with closing(_connect()) as connection:
        rows = connection.execute("SELECT idempotency_key, charge_id, reference, amount_cents, requests FROM charges")
        return [
            {"idempotency_key": k, "charge_id": c, "reference": r, "amount_cents": a, "requests": n}
            for k, c, r, a, n in rows
        ]


def reset() -> None:
    with closing(_connect()) as connection:
        connection.execute("DELETE FROM charges")
