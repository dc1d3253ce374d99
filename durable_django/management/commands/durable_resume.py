"""``manage.py durable_resume <workflow_id>...``: resume blocked runs with the current code."""

from __future__ import annotations

from ...runs import resume
from ..each_run import EachRunCommand


class Command(EachRunCommand):
    help = "Resume blocked runs: each replays its history with the code deployed now."
    action = staticmethod(resume)
    done = staticmethod(lambda run: f"resumed ({run.status})")
