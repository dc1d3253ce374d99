"""The database's clock, read as a value: the one clock every worker and web process shares."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connections
from django.db.models.functions import Now
from django.db.models.sql import Query

__all__ = ["database_now"]


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
