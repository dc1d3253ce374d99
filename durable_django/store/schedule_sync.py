"""Write the schedules declared in code to the database, idempotently.

When: every worker does it once, at its first sweep (the moment the code that will run the
workflows is the code deployed), and ``manage.py durable_schedules --sync`` does it for a
deploy pipeline. Not in ``post_migrate``: a migration may run before the new code is
deployed anywhere, and test databases would get every project schedule.

What: a new declaration becomes a row that fires from its first tick after now; a changed
one updates its row (its next tick kept unless its timing changed); an unchanged one writes
nothing. A row declared in code that the code no longer declares stops firing
(``missing_from_code``) and says so in the admin, where it can be deleted; it is never
deleted silently, and declaring it again resumes it. During a rolling deploy old and new
workers may disagree; the last worker to start (a new one) settles it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from ..core.cadence import jitter_for
from ..core.schedules import ScheduleDefinition
from ..models import Schedule
from .clock import Now, database_now
from .leases import database

__all__ = ["SyncReport", "sync"]

logger = logging.getLogger("durable_django")
Source = Schedule.Source


@dataclass
class SyncReport:
    """Names of the schedules a sync created, changed, left alone, and found missing from code."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _fields(definition: ScheduleDefinition) -> dict[str, Any]:
    cadence = definition.cadence
    return {
        "workflow_name": definition.workflow,
        "args_json": definition.args_json,
        "cron": cadence.cron or "",
        "every": cadence.every,
        "timezone": cadence.timezone,
        "overlap": definition.overlap.value,
        "catch_up": definition.catch_up,
        "jitter": definition.jitter,
    }


def sync(declared: Iterable[ScheduleDefinition], using: str | None = None) -> SyncReport:
    """Make the database's code schedules match ``declared``; see the module's docstring."""
    using = using or database()
    report = SyncReport()
    definitions = {definition.name: definition for definition in declared}
    with transaction.atomic(using=using):
        rows = Schedule.objects.using(using).select_for_update()
        existing = {row.name: row for row in rows.filter(Q(name__in=list(definitions)) | Q(source=Source.CODE))}
        now = database_now(using)
        for name, definition in definitions.items():
            row = existing.get(name)
            wanted = _fields(definition)
            if row is None:
                first = definition.cadence.after(now)
                timing = {"next_tick_at": first, "fire_at": first + jitter_for(name, first, definition.jitter)}
                try:
                    with transaction.atomic(using=using):  # another worker may be creating it right now
                        Schedule.objects.using(using).create(name=name, source=Source.CODE, **wanted, **timing)
                except IntegrityError:
                    continue
                report.created.append(name)
                continue
            changed = {key: value for key, value in wanted.items() if getattr(row, key) != value}
            if row.source != Source.CODE or row.missing_from_code:  # taken over, or declared again: from now on
                changed.update(source=Source.CODE, missing_from_code=False, note="")
            if not changed:
                report.unchanged.append(name)
                continue
            if {"cron", "every", "timezone", "jitter", "missing_from_code"} & changed.keys():
                first = definition.cadence.after(now)
                changed.update(next_tick_at=first, fire_at=first + jitter_for(name, first, definition.jitter))
            Schedule.objects.using(using).filter(pk=row.pk).update(updated_at=Now(), **changed)
            report.updated.append(name)
        for name, row in existing.items():
            if name in definitions or row.missing_from_code:
                continue
            Schedule.objects.using(using).filter(pk=row.pk).update(
                missing_from_code=True,
                note="no longer declared in code: it does not fire; delete it, or declare it again",
                updated_at=Now(),
            )
            report.missing.append(name)
            logger.warning("durable_django: schedule %r is no longer declared in code; it stops firing", name)
    return report
