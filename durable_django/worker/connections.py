"""Database connections that outlive one task: keep the healthy ones, drop the broken ones."""

from __future__ import annotations

from django.db import connections

__all__ = ["discard_broken_connections", "release_after_sweep"]


def discard_broken_connections() -> None:
    """Close only connections that failed and no longer answer (Django's health check).

    Celery closes Django's connections around every task (celery/celery#9824), which
    costs a reconnect per task; our tasks keep theirs and drop only broken ones.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
            connection.close()
        elif connection.connection is not None:
            connection.errors_occurred = False


def release_after_sweep() -> None:
    """Keep the sweeper thread's PostgreSQL connection for its next sweep; close the rest.

    A reconnect per sweep costs a backend start-up and three commits every interval.
    Pool processes forked while this thread holds a connection inherit its socket, which
    is safe with psycopg (it never closes a connection from a process that did not open
    it), but not with SQLite, whose documentation forbids carrying an open connection
    across ``fork()``: those are closed after every sweep.
    """
    for connection in connections.all(initialized_only=True):
        if connection.vendor != "postgresql":
            connection.close()
    discard_broken_connections()
