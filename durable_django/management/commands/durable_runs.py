"""``manage.py durable_runs [workflow_id]``: list runs, show one with its history, or follow it live."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...exceptions import RunNotFound
from ...models import WorkflowRun
from ...ops import console, replay
from ...runs import get_run
from ..arguments import at_least, positive_float, status


class Command(BaseCommand):
    help = (
        "Without a workflow_id: the newest runs as a table. With one: that run and its history "
        "(--json: the export that durable_django.testing.assert_replays reads; --follow: changes as they happen)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id", nargs="?", help="Show this run.")
        listing = parser.add_argument_group("listing runs")
        listing.add_argument("--status", type=status, action="append", default=[], help="Only runs in this status.")
        listing.add_argument("--workflow", help="Only runs of this workflow (its registered name).")
        listing.add_argument("--limit", type=at_least(1), default=50, help="Show at most this many runs (50).")
        one = parser.add_argument_group("one run")
        one.add_argument("--json", action="store_true", help="Print the run's history export as JSON.")
        one.add_argument("--follow", action="store_true", help="Print changes until the run stops or --timeout.")
        one.add_argument("--interval", type=positive_float, default=1.0, help="Seconds between looks (1).")
        one.add_argument("--timeout", type=positive_float, default=3600.0, help="Stop following after (3600) s.")

    def handle(self, *args: Any, workflow_id: str | None, **options: Any) -> None:
        if workflow_id is None:
            if options["json"] or options["follow"]:
                raise CommandError("--json and --follow need a workflow_id.")
            self.list(options["status"], options["workflow"], options["limit"])
            return
        try:
            run = get_run(workflow_id)
        except RunNotFound as error:
            raise CommandError(str(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(replay.export(run), indent=2, ensure_ascii=False))
        elif options["follow"]:
            self.follow(run, options["interval"], options["timeout"])
        else:
            self.stdout.write("\n".join(console.run_detail(run)))

    def list(self, statuses: list[str], workflow: str | None, limit: int) -> None:
        runs = console.select_runs(statuses=statuses, workflow=workflow)
        shown = list(runs[:limit])
        if not shown:
            self.stdout.write("no runs")
            return
        self.stdout.write("\n".join(console.run_table(shown)))
        total = runs.count() if len(shown) == limit else len(shown)
        if total > len(shown):
            self.stdout.write(f"{len(shown)} of {total} runs; --limit shows more")

    def follow(self, run: WorkflowRun, interval: float, timeout: float) -> None:
        try:
            for line in console.follow(run, interval=interval, timeout=timeout):
                self.stdout.write(line)
        except KeyboardInterrupt:
            raise CommandError(f"stopped following; the run is {run.status}", returncode=130) from None
        if run.status in WorkflowRun.LIVE:
            raise CommandError(f"still {run.status} after {timeout:g} s", returncode=2)
        if run.status != WorkflowRun.Status.COMPLETED:
            raise CommandError(f"the run is {run.status}")
