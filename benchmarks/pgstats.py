"""PostgreSQL side of the benchmark: the dedicated database and exact transaction counts.

``pg_stat_database.xact_commit`` is written lazily: a backend flushes its counts at most
once a second while busy, up to 10 s after going idle, and always when it exits. So a
count is read only when no backend is connected to the benchmark database (the worker is
stopped and the driver has closed its connections), through a connection to the
``postgres`` maintenance database, which the count does not include.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

__all__ = ["Admin", "Counters", "Poller"]


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative counters at one moment; subtract two of them to get a window."""

    xact_commit: int
    xact_rollback: int
    tup_inserted: int
    tup_updated: int
    tup_deleted: int
    #: Connections opened to the database (each costs a commit for the backend's start-up).
    sessions: int
    #: The next transaction id PostgreSQL will hand out (cluster-wide): only writing transactions take one.
    next_xid: int
    #: Rows written in every other database: non-zero means ``next_xid`` moved for others too.
    others_written: int

    def __sub__(self, earlier: Counters) -> Counters:
        return Counters(**{key: value - getattr(earlier, key) for key, value in asdict(self).items()})


class Admin:
    """A connection to the ``postgres`` database, to create, reset and watch the benchmark's one."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self.dbname = parts.path.lstrip("/")
        if "bench" not in self.dbname:
            raise SystemExit(f"refusing to drop and recreate {self.dbname!r}: the database name must contain 'bench'")
        self.database_url = database_url
        self.maintenance_url = urlunsplit(parts._replace(path="/postgres"))
        self.connection = psycopg.connect(self.maintenance_url, autocommit=True)

    def close(self) -> None:
        self.connection.close()

    def value(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.connection.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def recreate_database(self) -> None:
        """Drop the benchmark database (disconnecting whoever uses it) and create it empty."""
        self.connection.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        self.connection.execute(f'CREATE DATABASE "{self.dbname}"')

    def backends(self) -> int:
        """Backends of any kind (clients, autovacuum) connected to the benchmark database."""
        return int(self.value("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.dbname,)))

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until every backend of the benchmark database has exited, so its counts are flushed."""
        deadline = time.monotonic() + timeout
        while self.backends():
            if time.monotonic() > deadline:
                raise RuntimeError(f"backends still connected to {self.dbname!r} after {timeout:g} s")
            time.sleep(0.05)

    def counters(self) -> Counters:
        """Read the counters; call :meth:`wait_idle` first for an exact value."""
        self.connection.execute("SELECT pg_stat_clear_snapshot()")
        row = self.connection.execute(
            """
            SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted, d.sessions,
                   pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                   (SELECT coalesce(sum(o.tup_inserted + o.tup_updated + o.tup_deleted), 0)
                      FROM pg_stat_database o WHERE o.datname IS DISTINCT FROM d.datname)
              FROM pg_stat_database d WHERE d.datname = %s
            """,
            (self.dbname,),
        ).fetchone()
        assert row is not None, f"no statistics for database {self.dbname!r}"
        return Counters(*(int(value) for value in row))

    def settle_and_read(self, timeout: float = 60.0) -> Counters:
        self.wait_idle(timeout)
        return self.counters()

    def server_facts(self) -> dict[str, str]:
        names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections", "TimeZone")
        return {name: str(self.value(f"SHOW {name}")) for name in names}


class Poller:
    """A bench-database connection for the driver's own progress queries, counted.

    In autocommit mode each query is exactly one committed transaction, so the number of
    queries is what the driver added to ``xact_commit`` and is subtracted from it.
    """

    def __init__(self, database_url: str) -> None:
        self.connection = psycopg.connect(database_url, autocommit=True)
        self.queries = 0

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        self.queries += 1
        row = self.connection.execute(sql, params).fetchone()
        assert row is not None, sql
        return tuple(row)

    def close(self) -> None:
        self.connection.close()
