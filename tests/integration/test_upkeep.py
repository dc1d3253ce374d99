"""The sweeper thread keeps a healthy PostgreSQL connection between sweeps and drops a broken one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import InterfaceError, OperationalError, connection, connections

from durable_django.worker import connections as worker_connections

Call = Callable[[Callable[[], Any]], Any]


@pytest.fixture
def in_thread(transactional_db: None) -> Iterator[Call]:
    """Run callables in one long-lived thread, as the sweeper does (its own connections)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        yield lambda job: thread.submit(job).result(timeout=10)
        thread.submit(connections.close_all).result(timeout=10)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.postgres
def test_a_healthy_postgresql_connection_is_kept_for_the_next_sweep(in_thread: Call):
    first = in_thread(_backend_pid)
    in_thread(worker_connections.release_after_sweep)
    assert in_thread(_backend_pid) == first  # no reconnect: no start-up, no extra commits


@pytest.mark.postgres
def test_a_terminated_connection_is_dropped_and_the_next_sweep_reconnects(in_thread: Call):
    first = in_thread(_backend_pid)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    with pytest.raises((OperationalError, InterfaceError)):
        in_thread(_backend_pid)
    in_thread(worker_connections.release_after_sweep)
    assert in_thread(lambda: connection.connection) is None
    assert in_thread(_backend_pid) != first


def test_a_sqlite_connection_is_closed_after_every_sweep(in_thread: Call):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite rule; this session runs on PostgreSQL (make test-sqlite runs it)")
    in_thread(lambda: connection.ensure_connection())  # resolved in the thread: its own connection
    assert in_thread(lambda: connection.connection) is not None
    in_thread(worker_connections.release_after_sweep)
    assert in_thread(lambda: connection.connection) is None
