"""``manage.py durable_cancel <workflow_id>...``: cancel runs."""

from __future__ import annotations

from ...models import WorkflowRun
from ...runs import cancel
from ..each_run import EachRunCommand


def _done(run: WorkflowRun) -> str:
    if run.status == WorkflowRun.Status.CANCELLED:
        return "cancelled"
    return "cancel requested; Cancelled is raised at the run's current yield when a worker advances it"


class Command(EachRunCommand):
    help = "Cancel runs: Cancelled is raised in each workflow at its current yield (a blocked run ends at once)."
    action = staticmethod(cancel)
    done = staticmethod(_done)
