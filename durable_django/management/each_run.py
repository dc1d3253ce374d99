"""The shape of the commands that do one thing to each run named on the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ..exceptions import DurableError
from ..models import WorkflowRun
from ..runs import get_run

__all__ = ["EachRunCommand"]


class EachRunCommand(BaseCommand):
    """Apply :attr:`action` to every ``workflow_id`` given; report each; fail if any failed.

    Each run gets its own transaction, so one refused run does not undo the others.
    """

    action: Callable[[WorkflowRun], None]
    #: What to print once :attr:`action` succeeded, given the run as it is now.
    done: Callable[[WorkflowRun], str]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_ids", nargs="+", metavar="workflow_id", help="A run's workflow_id.")

    def handle(self, *args: Any, workflow_ids: list[str], **options: Any) -> None:
        failed = 0
        for workflow_id in workflow_ids:
            try:
                run = get_run(workflow_id)
                type(self).action(run)
            except DurableError as error:
                failed += 1
                self.stderr.write(f"{workflow_id}: {error}")
                continue
            run.refresh_from_db()
            self.stdout.write(f"{workflow_id}: {type(self).done(run)}")
        if failed:
            raise CommandError(f"{failed} of {len(workflow_ids)} runs refused; see above.")
