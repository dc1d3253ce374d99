"""System checks (``manage.py check``) for settings durable_django relies on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

__all__ = ["register"]


def check_sqlite_transaction_mode(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """SQLite needs IMMEDIATE transactions when a worker and a web process share the file."""
    problems: list[checks.CheckMessage] = []
    for alias, database in settings.DATABASES.items():
        if "sqlite" not in database.get("ENGINE", ""):
            continue
        if str(database.get("OPTIONS", {}).get("transaction_mode", "")).upper() != "IMMEDIATE":
            problems.append(
                checks.Error(
                    f"Database {alias!r} is SQLite without transaction_mode IMMEDIATE.",
                    hint=(
                        f"Add 'transaction_mode': 'IMMEDIATE' (and a 'timeout' such as 20) to "
                        f"DATABASES[{alias!r}]['OPTIONS'], so worker and web processes wait for each other "
                        "instead of failing with 'database is locked'."
                    ),
                    id="durable_django.E001",
                )
            )
    return problems


def check_celery_serializer(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Refuse pickle: stored and queued data must never execute code when loaded."""
    accepted = getattr(settings, "CELERY_ACCEPT_CONTENT", None) or []
    serializer = getattr(settings, "CELERY_TASK_SERIALIZER", "json")
    if "pickle" in accepted or serializer == "pickle":
        return [
            checks.Error(
                "Celery is configured to accept pickle.",
                hint="Use CELERY_TASK_SERIALIZER = 'json' and CELERY_ACCEPT_CONTENT = ['json'].",
                id="durable_django.E002",
            )
        ]
    return []


def register() -> None:
    checks.register(check_sqlite_transaction_mode, checks.Tags.database)
    checks.register(check_celery_serializer)
