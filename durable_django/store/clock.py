"""The database's clock, read as a value: the one clock every worker and web process shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import functions
from django.db.models.sql import Query

__all__ = ["Now", "database_now"]


class Now(functions.Now):
    """Django's ``Now()``, written on SQLite with the six decimals every other time there has.

    SQLite keeps times as text and Django's ``Now()`` there stops at the millisecond
    ("12:00:00.123"), while a time Django writes, or ``Now() + delta`` computes, has six
    decimals ("12:00:00.123000"). Compared as text the second is later, so a work item made
    due now would not be due until the next millisecond: a retry at once, or a time moved by
    ``pass_time``, was skipped by whoever looked within it.
    """

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(STRFTIME('%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f', 'NOW') || '000')",
            **extra_context,
        )


def database_now(using: str) -> datetime:
    """``Now()`` as the database computes it (inside a transaction, PostgreSQL's statement time), aware, in UTC."""
    connection = connections[using]
    sql, params = Query(None).get_compiler(connection=connection).compile(Now())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # Django keeps naive database times in UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)  # type: ignore[no-any-return]
