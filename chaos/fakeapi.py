"""A fake payment and email API, run as its own loopback process: the ground truth for effects.

``python -m chaos.fakeapi --port P --ledger path.sqlite3``

Stripe-like idempotency: the first request with an ``Idempotency-Key`` applies the effect
and saves the response; a repeat with the same key and the same body gets the saved
response back (its request count grows); the same key with another body is refused
(``400``). The ledger is its own SQLite file, untouched by the faults the harness puts
into PostgreSQL, and nothing but this process writes it.

Endpoints: ``POST /charges`` ``{"order_id", "amount_cents"}``, ``POST /refunds``
``{"order_id", "charge_id"}`` (an empty ``charge_id``: by the order's reference, below),
``POST /emails`` ``{"order_id", "kind"}``, ``GET /health``, ``GET /stats``, ``POST /control`` ``{"p503", "pdrop"}``.

Faults, by magic amounts (like a payment provider's test cards) and at random:
- amount ending in ``01``: the card is declined (``402``, saved like any response);
- ending in ``02``: ``503`` for the first two requests of the key, nothing applied;
- ending in ``03``: the first request applies the charge, then the connection is reset
  with no response (the "charged, but the worker never heard" window);
- any request: ``503`` with probability ``--p503``, apply-then-drop with ``--pdrop``.

A refund by the order's reference (the composed workload's sagas compensate that way, since
a cancelled charge step may have charged without its result reaching the workflow) refunds
the order's applied charge; if it was refunded already, the earlier refund comes back and
nothing is applied; if the order has no charge, the order is voided: a later charge for it
(a paused attempt that wakes up after the compensation) is declined, as a provider declines
a cancelled payment intent.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sqlite3
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    kind TEXT NOT NULL, idempotency_key TEXT NOT NULL, order_id INTEGER NOT NULL, params TEXT NOT NULL,
    status TEXT NOT NULL, effect_id TEXT NOT NULL, code INTEGER NOT NULL, response TEXT NOT NULL,
    requests INTEGER NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL,
    PRIMARY KEY (kind, idempotency_key)
);
-- Append-only: one row each time an effect is really applied (a charge made, a refund, an email sent).
CREATE TABLE IF NOT EXISTS applications (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, idempotency_key TEXT NOT NULL, order_id INTEGER NOT NULL,
    effect_id TEXT NOT NULL, target TEXT NOT NULL, at REAL NOT NULL
);
-- Every request and what the API did with it.
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, idempotency_key TEXT NOT NULL, order_id INTEGER,
    outcome TEXT NOT NULL, at REAL NOT NULL
);
"""

KINDS = {"/charges": "charge", "/refunds": "refund", "/emails": "email"}
PREFIX = {"charge": "ch", "refund": "re", "email": "em"}


class Ledger:
    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        with self.connect() as connection:
            connection.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection


class Faults:
    def __init__(self, seed: int, p503: float, pdrop: float) -> None:
        self.random = random.Random(seed)
        self.p503 = p503
        self.pdrop = pdrop
        self.lock = threading.Lock()

    def draw(self) -> str:
        with self.lock:
            value = self.random.random()
        if value < self.p503:
            return "503"
        if value < self.p503 + self.pdrop:
            return "drop"
        return ""


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # one line per request is too much
        pass

    def _reply(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        """Close the connection with a TCP reset and no response at all."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def do_GET(self) -> None:
        if self.path == "/health":
            return self._reply(200, {"ok": True})
        if self.path == "/stats":
            rows = self.server.ledger.connect().execute(
                "SELECT kind, outcome, count(*) FROM requests GROUP BY kind, outcome"
            )
            return self._reply(200, [list(row) for row in rows])
        return self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._reply(400, {"error": "invalid json"})
        if self.path == "/control":
            faults = self.server.faults
            faults.p503 = float(body.get("p503", faults.p503))
            faults.pdrop = float(body.get("pdrop", faults.pdrop))
            return self._reply(200, {"p503": faults.p503, "pdrop": faults.pdrop})
        kind = KINDS.get(self.path)
        key = self.headers.get("Idempotency-Key", "")
        if kind is None:
            return self._reply(404, {"error": "not found"})
        if not key or not isinstance(body.get("order_id"), int):
            return self._reply(400, {"error": "an Idempotency-Key header and an integer order_id are required"})
        self.server.handle_effect(self, kind, key, body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, ledger: Ledger, faults: Faults, latency: float) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.ledger = ledger
        self.faults = faults
        self.latency = latency

    def handle_effect(self, handler: Handler, kind: str, key: str, body: dict[str, Any]) -> None:
        order_id = body["order_id"]
        params = json.dumps(body, sort_keys=True)
        draw = self.faults.draw()
        amount = int(body.get("amount_cents", 0)) if kind == "charge" else 0
        magic = amount % 100
        connection = self.ledger.connect()
        now = time.time()
        time.sleep(self.latency)
        connection.execute("BEGIN IMMEDIATE")
        try:
            seen = connection.execute(
                "SELECT count(*) FROM requests WHERE kind = ? AND idempotency_key = ?", (kind, key)
            ).fetchone()[0]
            row = connection.execute(
                "SELECT params, code, response FROM effects WHERE kind = ? AND idempotency_key = ?", (kind, key)
            ).fetchone()

            def log(outcome: str) -> None:
                connection.execute(
                    "INSERT INTO requests (kind, idempotency_key, order_id, outcome, at) VALUES (?, ?, ?, ?, ?)",
                    (kind, key, order_id, outcome, now),
                )

            if row is not None:
                saved_params, code, response = row
                if saved_params != params:
                    log("mismatch")
                    connection.execute("COMMIT")
                    return handler._reply(400, {"error": "idempotency_error", "detail": "same key, other parameters"})
                connection.execute(
                    "UPDATE effects SET requests = requests + 1, last_at = ? WHERE kind = ? AND idempotency_key = ?",
                    (now, kind, key),
                )
                log("replayed")
                connection.execute("COMMIT")
                time.sleep(self.latency)
                return handler._reply(code, json.loads(response))
            if draw == "503" or (magic == 2 and seen < 2):
                log("unavailable")
                connection.execute("COMMIT")
                return handler._reply(503, {"error": "try again"})
            code, response, status, target = self._apply(connection, kind, key, body, magic)
            if code == 404:
                log("unknown_target")
                connection.execute("COMMIT")
                return handler._reply(code, response)
            effect_id = response["id"]
            connection.execute(
                "INSERT INTO effects VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (kind, key, order_id, params, status, effect_id, code, json.dumps(response), now, now),
            )
            if status == "applied":
                connection.execute(
                    "INSERT INTO applications (kind, idempotency_key, order_id, effect_id, target, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, key, order_id, effect_id, target, now),
                )
            dropped = draw == "drop" or (magic == 3 and seen == 0)
            log(("applied_then_dropped" if dropped else "applied") if status == "applied" else status)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if dropped:
            return handler._reset()
        time.sleep(self.latency)  # the response is on its way: a worker killed now never hears it
        handler._reply(code, response)

    @staticmethod
    def _apply(
        connection: sqlite3.Connection, kind: str, key: str, body: dict[str, Any], magic: int
    ) -> tuple[int, dict[str, Any], str, str]:
        effect_id = f"{PREFIX[kind]}_{uuid.uuid4().hex[:16]}"
        if kind == "charge":
            voided = connection.execute(
                "SELECT 1 FROM effects WHERE kind = 'refund' AND order_id = ? AND status = 'voided'",
                (body["order_id"],),
            ).fetchone()
            if magic == 1 or voided:
                return 402, {"id": effect_id, "status": "declined", "error": "card_declined"}, "declined", ""
            return (
                200,
                {"id": effect_id, "status": "succeeded", "amount_cents": body.get("amount_cents")},
                "applied",
                "",
            )
        if kind == "refund":
            charge_id = str(body.get("charge_id", ""))
            if not charge_id:
                return Server._refund_order(connection, effect_id, body["order_id"])
            charge = connection.execute(
                "SELECT order_id FROM effects WHERE kind = 'charge' AND effect_id = ? AND status = 'applied'",
                (charge_id,),
            ).fetchone()
            if charge is None or charge[0] != body["order_id"]:
                return 404, {"error": "no such charge for this order", "charge_id": charge_id}, "", ""
            return 200, {"id": effect_id, "status": "refunded", "charge_id": charge_id}, "applied", charge_id
        return 200, {"id": effect_id, "status": "sent", "kind": body.get("kind")}, "applied", str(body.get("kind"))

    @staticmethod
    def _refund_order(
        connection: sqlite3.Connection, effect_id: str, order_id: int
    ) -> tuple[int, dict[str, Any], str, str]:
        """Refund whatever the order was charged, once per order whatever the key; void an order never charged."""
        charge = connection.execute(
            "SELECT effect_id FROM effects WHERE kind = 'charge' AND order_id = ? AND status = 'applied'", (order_id,)
        ).fetchone()
        if charge is None:
            return 200, {"id": effect_id, "status": "voided", "charge_id": None}, "voided", ""
        earlier = connection.execute(
            "SELECT effect_id FROM applications WHERE kind = 'refund' AND target = ?", (charge[0],)
        ).fetchone()
        if earlier is not None:
            return 200, {"id": earlier[0], "status": "refunded", "charge_id": charge[0]}, "already_refunded", charge[0]
        return 200, {"id": effect_id, "status": "refunded", "charge_id": charge[0]}, "applied", charge[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--p503", type=float, default=0.0)
    parser.add_argument("--pdrop", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.01, help="seconds before applying and before replying")
    args = parser.parse_args()
    server = Server(args.port, Ledger(args.ledger), Faults(args.seed, args.p503, args.pdrop), args.latency)
    print(f"fake API listening on 127.0.0.1:{args.port}, ledger {args.ledger}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
