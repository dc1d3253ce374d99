"""``manage.py durable_retry <workflow_id>...``: retry failed runs, resume blocked ones."""

from __future__ import annotations

from ...ops.repair import retry
from ..each_run import EachRunCommand


class Command(EachRunCommand):
    help = (
        "Retry failed runs from the step (or child) whose failure ended them, replaying what came before; "
        "resume blocked runs."
    )
    action = staticmethod(retry)
    done = staticmethod(lambda run: f"retrying ({run.status})")
