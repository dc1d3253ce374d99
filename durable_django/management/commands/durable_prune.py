"""``manage.py durable_prune --days N``: delete finished top-level runs older than N days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...ops import prune
from ..arguments import at_least


class Command(BaseCommand):
    help = (
        "Delete completed, failed and cancelled top-level runs that finished more than --days days ago, "
        "with their history, signals and child runs, in batches. Live and blocked runs are never touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=at_least(0), required=True, help="Age in days of the oldest run to keep.")
        parser.add_argument("--batch-size", type=at_least(1), default=500, help="Runs per transaction (500).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args: Any, days: int, batch_size: int, dry_run: bool, **options: Any) -> None:
        older_than = timedelta(days=days)
        total = prune.candidates(older_than).count()
        verb = "would delete" if dry_run else "deleted"
        done = 0
        rows: dict[str, int] = {}
        for batch in prune.prune(older_than, batch_size=batch_size, dry_run=dry_run):
            done += batch.runs
            for label, count in batch.rows.items():
                rows[label] = rows.get(label, 0) + count
            if options["verbosity"] >= 1 and total > batch_size:
                self.stderr.write(f"{verb} {done} of about {total} runs")
        detail = ", ".join(f"{count} {label}" for label, count in sorted(rows.items()) if count)
        kept = f"; {total - done} kept (they have unfinished child runs, or were busy)" if total > done else ""
        self.stdout.write(f"{verb} {done} finished runs older than {days} days{f' ({detail})' if detail else ''}{kept}")
