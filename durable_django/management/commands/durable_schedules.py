"""``manage.py durable_schedules``: list schedules; ``--sync`` writes the code's first; pause, resume, trigger one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...core.schedules import declared
from ...exceptions import InvalidSchedule
from ...models import Schedule
from ...ops.console import table
from ...store import schedule_sync
from ...store.schedules import cadence_of


def _when(row: Schedule) -> str:
    try:
        return cadence_of(row).describe()
    except InvalidSchedule as error:
        return f"invalid: {error}"


def _state(row: Schedule) -> str:
    if row.missing_from_code:
        return "not in code"
    return "paused" if row.paused else "active"


class Command(BaseCommand):
    help = (
        "The schedules, with their next tick. --sync first writes the schedules the code declares "
        "(as every worker does when it starts): run it in a deploy to see them before a worker starts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sync", action="store_true", help="Write the code's schedules to the database first.")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--pause", metavar="NAME", help="Stop firing schedule NAME until it is resumed.")
        action.add_argument("--resume", metavar="NAME", help="Fire schedule NAME again from its next tick after now.")
        action.add_argument("--trigger", metavar="NAME", help="Start schedule NAME's workflow now.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sync"]:
            report = schedule_sync.sync(declared())
            for what in ("created", "updated", "missing"):
                names = getattr(report, what)
                if names:
                    self.stdout.write(f"{what}: {', '.join(names)}")
        for action in ("pause", "resume", "trigger"):
            if options[action]:
                self.act(action, options[action])
        rows = Schedule.objects.order_by("name").select_related("last_run")
        if not rows:
            self.stdout.write("no schedules")
            return
        lines = [
            [
                row.name,
                row.workflow_name,
                _when(row),
                "" if row.fire_at is None else f"{row.fire_at:%Y-%m-%d %H:%M:%S} UTC",
                _state(row),
                "" if row.last_run is None else f"{row.last_run.workflow_id} ({row.last_run.status})",
            ]
            for row in rows
        ]
        self.stdout.write("\n".join(table(["NAME", "WORKFLOW", "WHEN", "NEXT", "STATE", "LAST RUN"], lines)))

    def act(self, action: str, name: str) -> None:
        row = Schedule.objects.filter(name=name).first()
        if row is None:
            raise CommandError(f"no schedule is named {name!r}; `manage.py durable_schedules` lists them.")
        if action == "trigger":
            run = row.trigger()
            self.stdout.write(f"started {run.workflow_id}" if run is not None else f"nothing started: {row.note}")
        else:
            getattr(row, action)()
            self.stdout.write(f"{action}d {name}")
