"""``manage.py durable_signal <workflow_id> <name> [payload]``: send a signal to a run."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...exceptions import DurableError
from ...runs import signal
from ..arguments import json_value


class Command(BaseCommand):
    help = "Send signal <name> to a live run, for its wait_signal(name); the payload is JSON (null if left out)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id", help="The run's workflow_id.")
        parser.add_argument("name", help="The signal's name, as in wait_signal(name).")
        parser.add_argument(
            "payload", nargs="?", type=json_value, default=None, help='JSON, such as \'{"carrier": "UPS"}\'.'
        )

    def handle(self, *args: Any, workflow_id: str, name: str, payload: Any, **options: Any) -> None:
        try:
            signal(workflow_id, name, payload)
        except DurableError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"sent signal {name!r} to {workflow_id}")
