"""Wait for a run to finish: ``run.wait(timeout)`` and ``await run.await_result(timeout)``.

Both return the run's result, raise its error (:class:`RunFailed` with the original type and
message, or :class:`Cancelled`), or raise :class:`WaitTimeout` (a ``TimeoutError``). A blocked
run is not finished (a fix can resume it): they keep waiting for it.

On PostgreSQL the transaction that finishes a run sends ``NOTIFY durable_run_<run id hex>``
(a trigger on the run's status, created by migration 0005, so every writer sends it: the
fast path's one-statement completion too, and only on commit). A waiter opens its own
connection, ``LISTEN``\\ s, reads the run once, and sleeps on that connection until it is
told or its time is up: no polling. Elsewhere (SQLite) it polls, every 50 ms at first and
at most once a second later on.

Inside an open transaction ``wait()`` answers at once for a run finished as that transaction
sees it, and otherwise refuses, as ``update()`` does: a run started in it is seen by no worker
before it commits, and on SQLite the open transaction holds the lock every worker's write
needs, so the wait could only time out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections

from .conf import settings
from .exceptions import Cancelled, DeadlineExceeded, InvalidRequest, RunFailed, RunNotFound, WaitTimeout
from .models import WorkflowRun
from .store.leases import database

__all__ = ["async_listener", "await_result", "channel", "listener", "listens", "outcome_of_row", "wait"]

Status = WorkflowRun.Status
_COLUMNS = ("status", "result_json", "error_json", "finished_at")
_FIRST_POLL, _GROWTH, _LONGEST_POLL = 0.05, 1.5, 1.0


class _Pending:
    """The run has not finished yet (a result can be None, so None cannot say it)."""


PENDING = _Pending()


def channel(run_id: uuid.UUID) -> str:
    """The NOTIFY channel of one run; the trigger names it the same way."""
    return f"durable_run_{run_id.hex}"


def listens(using: str) -> bool:
    """Whether waiting on this database uses LISTEN/NOTIFY (PostgreSQL with psycopg 3), else a poll."""
    if connections[using].vendor != "postgresql" or not settings.WAIT_LISTEN:
        return False
    try:
        import psycopg  # noqa: F401
    except ImportError:  # psycopg2: poll
        return False
    return True


def outcome_of_row(run: WorkflowRun, row: tuple[Any, ...] | None) -> Any:
    """Update ``run`` from ``row`` (:data:`_COLUMNS`); return its result, raise its error, or :data:`PENDING`."""
    if row is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    run.status, run.result_json, run.error_json, run.finished_at = row
    if run.status == Status.COMPLETED:
        return run.result
    if run.status == Status.FAILED:
        error = run.error or {}
        raise RunFailed(run.workflow_id, error.get("type", ""), error.get("message", ""), error.get("traceback", ""))
    if run.status == Status.CANCELLED:
        if (run.error or {}).get("type") == f"{DeadlineExceeded.__module__}.{DeadlineExceeded.__qualname__}":
            raise DeadlineExceeded(f"run {run.workflow_id!r} was cancelled: its deadline passed")
        raise Cancelled(f"run {run.workflow_id!r} was cancelled")
    return PENDING


def _seconds(timeout: float | timedelta) -> float:
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
        raise InvalidRequest(f"timeout={timeout!r}: pass seconds (a number of at least 0) or a timedelta.")
    return float(seconds)


def _gave_up(run: WorkflowRun, seconds: float) -> WaitTimeout:
    return WaitTimeout(f"run {run.workflow_id!r} did not finish within {seconds:g} s; it is {run.status}.")


def _read(using: str, run: WorkflowRun) -> tuple[Any, ...] | None:
    return WorkflowRun.objects.using(using).filter(pk=run.pk).values_list(*_COLUMNS).first()


def _connection_params(using: str) -> dict[str, Any]:
    """psycopg's arguments for a connection of its own, to the database Django uses."""
    params: dict[str, Any] = connections[using].get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    return {**params, "autocommit": True}


def _select(run: WorkflowRun) -> Any:
    from psycopg import sql

    return sql.SQL("SELECT {} FROM {} WHERE id = %s").format(
        sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)), sql.Identifier(WorkflowRun._meta.db_table)
    )


def _listen(run: WorkflowRun) -> Any:
    from psycopg import sql

    return sql.SQL("LISTEN {}").format(sql.Identifier(channel(run.pk)))


class Listener:
    """A connection that listens for one run's end and reads the run (blocking)."""

    def __init__(self, connection: Any, run: WorkflowRun) -> None:
        self.connection = connection
        self.run = run

    def read(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.connection.execute(_select(self.run), [self.run.pk]).fetchone()
        return row

    def notified(self, timeout: float) -> str | None:
        """Sleep until the run's NOTIFY arrives (its payload, the status) or ``timeout`` passes (None)."""
        for notification in self.connection.notifies(timeout=timeout, stop_after=1):
            payload: str = notification.payload
            return payload
        return None


@contextmanager
def listener(run: WorkflowRun, using: str | None = None) -> Iterator[Listener]:
    """Listen for ``run``'s end on a new connection, closed on exit (PostgreSQL only)."""
    import psycopg

    with psycopg.connect(**_connection_params(using or database())) as connection:
        connection.execute(_listen(run))
        yield Listener(connection, run)


def wait(run: WorkflowRun, timeout: float | timedelta) -> Any:
    """Block until ``run`` finishes or ``timeout`` (seconds or a timedelta) passes; see the module."""
    seconds = _seconds(timeout)
    deadline = time.monotonic() + seconds
    using = database()
    if connections[using].in_atomic_block:
        # What this transaction sees may be finished already (a test that ran it to its end
        # in-process): that answers at once. Anything else could only time out here.
        if (outcome := outcome_of_row(run, _read(using, run))) is not PENDING:
            return outcome
        raise InvalidRequest(
            f"wait() was called inside an open transaction (run {run.workflow_id!r}): no worker sees what it "
            "wrote before it commits, and it may hold the lock their writes need, so the wait would only time out. "
            "Wait after transaction.atomic() ends (in transaction.on_commit, or in a view marked "
            "@transaction.non_atomic_requests under ATOMIC_REQUESTS)."
        )
    if listens(using):
        with listener(run, using) as listen:
            while (outcome := outcome_of_row(run, listen.read())) is PENDING:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _gave_up(run, seconds)
                listen.notified(remaining)
            return outcome
    interval = _FIRST_POLL
    while (outcome := outcome_of_row(run, _read(using, run))) is PENDING:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _gave_up(run, seconds)
        time.sleep(min(interval, remaining))
        interval = min(interval * _GROWTH, _LONGEST_POLL)
    return outcome


@asynccontextmanager
async def async_listener(run: WorkflowRun, using: str) -> AsyncIterator[Any]:
    """:func:`listener` for async code: an ``AsyncConnection`` listening on the run's channel."""
    import psycopg

    connection = await psycopg.AsyncConnection.connect(**_connection_params(using))
    async with connection:
        await connection.execute(_listen(run))
        yield connection


async def await_result(run: WorkflowRun, timeout: float | timedelta) -> Any:
    """:func:`wait` for async code: the event loop goes on meanwhile."""
    seconds = _seconds(timeout)
    deadline = time.monotonic() + seconds
    using = database()
    if listens(using):
        async with async_listener(run, using) as connection:
            while True:
                row = await (await connection.execute(_select(run), [run.pk])).fetchone()
                if (outcome := outcome_of_row(run, row)) is not PENDING:
                    return outcome
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _gave_up(run, seconds)
                async for _ in connection.notifies(timeout=remaining, stop_after=1):
                    pass
    interval = _FIRST_POLL
    read = sync_to_async(_read)
    while (outcome := outcome_of_row(run, await read(using, run))) is PENDING:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _gave_up(run, seconds)
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * _GROWTH, _LONGEST_POLL)
    return outcome
