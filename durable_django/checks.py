"""System checks (``manage.py check``) for settings durable_django relies on.

``E001`` SQLite without IMMEDIATE transactions; ``E002`` pickle in Celery's settings;
``E003`` a ``DURABLE_*`` setting out of its range; ``W001`` a ``DURABLE_*`` setting that does
not exist (a typo is otherwise silently ignored).
"""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings
from django.core import checks

from .conf import PREFIX, Settings

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


def check_durable_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every ``DURABLE_*`` setting exists and holds a value in its range."""
    known = {setting.setting_name: setting for setting in Settings.all()}
    problems: list[checks.CheckMessage] = []
    for setting in known.values():
        problem = setting.problem()
        if problem is not None:
            value = getattr(settings, setting.setting_name)
            problems.append(
                checks.Error(
                    f"{setting.setting_name} {problem}, not {value!r}.",
                    hint=f"Set {setting.setting_name} to a valid value, such as {setting.default!r} (the default), "
                    f"or remove it. It sets: {setting.doc}",
                    id="durable_django.E003",
                )
            )
    for name in dir(settings):
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"Did you mean {close[0]}?" if close else "See the settings table in durable_django's reference."
            problems.append(
                checks.Warning(
                    f"{name} is not a durable_django setting; it has no effect.", hint=hint, id="durable_django.W001"
                )
            )
    return problems


def register() -> None:
    checks.register(check_sqlite_transaction_mode, checks.Tags.database)
    checks.register(check_celery_serializer)
    checks.register(check_durable_settings)
