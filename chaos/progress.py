"""How far the runs are, read from the harness's database: counts by status, whether all drained, a progress line."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from django.db import DatabaseError, connection
from django.db.models import Count

if TYPE_CHECKING:
    from .composed import ComposedDriver
    from .injector import Injector
    from .workload import Workload

logger = logging.getLogger("chaos")


def counts() -> Counter[str]:
    """Runs by status, and the work items left (``work_items``)."""
    from durable_django.models import WorkflowRun, WorkItem

    found: Counter[str] = Counter(
        dict(WorkflowRun.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    )
    found["work_items"] = WorkItem.objects.count()
    connection.close()
    return found


def drained(workload: Workload, composed: ComposedDriver) -> bool:
    """Every committed start has a finished run, no work item is left and the drivers have nothing more to do."""
    from durable_django.models import WorkflowRun

    try:
        found = counts()
    except DatabaseError:
        connection.close()
        return False
    live = sum(found[status] for status in WorkflowRun.LIVE)
    committed = sum(1 for plan in workload.plans if plan.outcome == "committed")
    committed += sum(1 for plan in composed.plans if plan.outcome == "committed")
    runs = sum(found[status] for status in (*WorkflowRun.LIVE, *WorkflowRun.FINISHED, "blocked"))
    pending = workload.pending_actions() + composed.pending_actions()
    return not live and runs >= committed and not found["work_items"] and not pending


def log_progress(t: float, workload: Workload, injector: Injector) -> None:
    """One line: the starts, the runs finished and live, the faults landed so far."""
    try:
        found = counts()
    except DatabaseError:
        connection.close()
        logger.info("t=%5.0fs  (database unavailable)", t)
        return
    started = sum(1 for plan in workload.plans if plan.outcome != "planned")
    done = sum(found[status] for status in ("completed", "failed", "cancelled"))
    faults = injector.counts
    logger.info(
        "t=%5.0fs  started %d/%d  finished %d  live %d  items %d | kills %d  terminations %d  pg %d  broker %d",
        t,
        started,
        len(workload.plans),
        done,
        sum(found[status] for status in ("pending", "running", "waiting")),
        found["work_items"],
        faults["worker_kills_landed"],
        faults["terminations_landed"],
        faults["pg_restarts"],
        faults["broker_restarts"] + faults["broker_flushes"],
    )
