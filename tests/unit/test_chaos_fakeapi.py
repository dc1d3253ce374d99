"""The chaos harness's fake payment API: the ground truth its checker trusts must itself be right."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from chaos.fakeapi import Faults, Ledger, Server
from chaos.services import free_port


@pytest.fixture
def api(tmp_path) -> Iterator[tuple[int, str]]:
    ledger = str(tmp_path / "ledger.sqlite3")
    server = Server(free_port(), Ledger(ledger), Faults(seed=1, p503=0.0, pdrop=0.0), latency=0.0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], ledger
    finally:
        server.shutdown()
        server.server_close()


def post(port: int, path: str, body: dict, key: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Idempotency-Key": key})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def rows(ledger: str, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(ledger)) as db:
        return db.execute(sql).fetchall()


def test_a_key_applies_its_charge_once_and_replays_the_saved_response(api):
    port, ledger = api
    first = post(port, "/charges", {"order_id": 1, "amount_cents": 1050}, "k1")
    again = post(port, "/charges", {"order_id": 1, "amount_cents": 1050}, "k1")
    assert first == again and first[0] == 200
    assert rows(ledger, "SELECT requests FROM effects WHERE idempotency_key = 'k1'") == [(2,)]
    assert rows(ledger, "SELECT count(*) FROM applications") == [(1,)]
    status, body = post(port, "/charges", {"order_id": 1, "amount_cents": 999}, "k1")
    assert (status, body["error"]) == (400, "idempotency_error")
    assert rows(ledger, "SELECT count(*) FROM applications") == [(1,)]


def test_magic_amounts_decline_fail_twice_or_apply_then_drop_the_connection(api):
    port, ledger = api
    assert post(port, "/charges", {"order_id": 2, "amount_cents": 1001}, "declined")[0] == 402
    assert post(port, "/charges", {"order_id": 2, "amount_cents": 1001}, "declined")[0] == 402
    outcomes = [post(port, "/charges", {"order_id": 3, "amount_cents": 1002}, "busy")[0] for _ in range(3)]
    assert outcomes == [503, 503, 200]
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        post(port, "/charges", {"order_id": 4, "amount_cents": 1003}, "dropped")
    assert post(port, "/charges", {"order_id": 4, "amount_cents": 1003}, "dropped")[0] == 200
    applied = rows(ledger, "SELECT order_id FROM applications ORDER BY order_id")
    assert applied == [(3,), (4,)], "a decline or a 503 applied something, or the dropped charge applied twice"


def test_a_refund_needs_an_applied_charge_of_the_same_order(api):
    port, _ = api
    _, charge = post(port, "/charges", {"order_id": 5, "amount_cents": 1050}, "c5")
    assert post(port, "/refunds", {"order_id": 6, "charge_id": charge["id"]}, "r6")[0] == 404
    status, refund = post(port, "/refunds", {"order_id": 5, "charge_id": charge["id"]}, "r5")
    assert (status, refund["charge_id"]) == (200, charge["id"])


def test_a_refund_by_the_orders_reference_refunds_its_charge_once_whatever_the_key(api):
    port, ledger = api
    status, charge = post(port, "/charges", {"order_id": 7, "amount_cents": 1050}, "charge-7")
    assert status == 200
    status, refund = post(port, "/refunds", {"order_id": 7, "charge_id": ""}, "refund-7-a")
    assert (status, refund["status"], refund["charge_id"]) == (200, "refunded", charge["id"])
    status, again = post(port, "/refunds", {"order_id": 7, "charge_id": ""}, "refund-7-b")  # asked again, new key
    assert (status, again["id"]) == (200, refund["id"])
    assert rows(ledger, "SELECT kind, target FROM applications WHERE order_id = 7 ORDER BY id") == [
        ("charge", ""),
        ("refund", charge["id"]),
    ]


def test_a_refund_by_reference_of_an_order_never_charged_voids_it_and_a_late_charge_is_declined(api):
    port, ledger = api
    status, void = post(port, "/refunds", {"order_id": 8, "charge_id": ""}, "refund-8")
    assert (status, void["status"]) == (200, "voided")
    assert post(port, "/charges", {"order_id": 8, "amount_cents": 1050}, "charge-8")[0] == 402
    assert rows(ledger, "SELECT count(*) FROM applications WHERE order_id = 8") == [(0,)]
