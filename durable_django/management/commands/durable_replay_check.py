"""``manage.py durable_replay_check``: which live runs would this code block? Exit 1 if any."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...ops import preflight


class Command(BaseCommand):
    help = (
        "Replay every pending, running, waiting and blocked run against this code, with no side effects, "
        "and list those it would block with non-determinism. Exits 1 if there is any: run it before a deploy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", help="Only runs of this workflow (its registered name).")
        parser.add_argument(
            "--export-dir", type=Path, help="Also write each checked run's history there, as <workflow_id>.json."
        )

    def handle(self, *args: Any, workflow: str | None, export_dir: Path | None, **options: Any) -> None:
        if export_dir is not None and not export_dir.is_dir():
            raise CommandError(f"--export-dir {export_dir}: no such directory.")
        runs = preflight.runs_to_check(workflow)
        total = runs.count()
        problems = checked = 0
        for result in preflight.check_runs(runs, export=export_dir is not None):
            checked += 1
            run = result.run
            if result.export is not None and export_dir is not None:
                path = export_dir / f"{quote(run.workflow_id, safe='')}.json"
                path.write_text(json.dumps(result.export, indent=2, ensure_ascii=False))
            if result.problem is not None:
                problems += 1
                self.stdout.write(f"{run.workflow_id} ({run.workflow_name}, {run.status}): {result.problem}")
            elif run.status == run.Status.BLOCKED:
                resumable = "replays with this code; durable_resume continues it"
                self.stdout.write(f"{run.workflow_id} ({run.workflow_name}, blocked): {resumable}")
            if options["verbosity"] >= 1 and (checked % 100 == 0 or checked == total) and total >= 100:
                self.stderr.write(f"checked {checked} of {total} runs")
        summary = f"{checked} run{'' if checked == 1 else 's'} checked, {problems} would be blocked by non-determinism"
        if problems:
            raise CommandError(summary)
        self.stdout.write(summary)
