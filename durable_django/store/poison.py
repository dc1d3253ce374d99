"""Work that fails the same way every time ends its run visibly, after a few tries, instead of retrying forever.

A worker that cannot advance a run (an exception from the store, say, or a value the
database refuses) or cannot record a step's outcome tries again with a growing delay.
Errors of the connection or the server are transient and left to the usual recovery; any
other error counts, on the work item, and the third one blocks the run with that error, so
an operator sees it in the admin and ``run.resume()`` continues once the cause is fixed.
"""

from __future__ import annotations

import logging
import uuid

from django.db import InterfaceError, OperationalError, transaction

from ..core.interpreter import ErrorInfo, error_info
from ..models import WorkflowRun, WorkItem
from . import lifecycle
from .locking import RunBusy, lock_run
from .querysets import db_now_plus

__all__ = ["TRANSIENT", "TRIES", "advance_failed", "step_report_failed"]

logger = logging.getLogger("durable_django")

#: Errors that say nothing about the work: the connection dropped, the server restarted, a deadlock.
TRANSIENT = (OperationalError, InterfaceError)
#: Failures of one work item before its run is blocked.
TRIES = 3


def advance_failed(using: str, item_id: int, run_id: uuid.UUID, error: Exception) -> None:
    """An advance or a timer of ``run_id`` raised ``error``: try later, or block the run."""
    _failed(using, WorkItem.objects.using(using).filter(pk=item_id), run_id, error, "advance")


def step_report_failed(using: str, item_id: int, token: int, run_id: uuid.UUID, error: Exception) -> None:
    """Recording a step's outcome raised ``error``: hand the step back for a later attempt, or block the run."""
    _failed(using, WorkItem.objects.using(using).held(item_id, token), run_id, error, "record a step of")


def _failed(using: str, items: object, run_id: uuid.UUID, error: Exception, what: str) -> None:
    logger.error("durable_django: could not %s run %s", what, run_id, exc_info=error)
    with transaction.atomic(using=using):
        # The run's row before the item's, the order of store/locking.py; and, as every worker,
        # never wait for it: a run someone holds (a cancel's advance about to cancel this very
        # item, a caller's open transaction) only postpones the block to a later failure.
        try:
            run = lock_run(using, run_id, skip_locked=True)
            busy = False
        except RunBusy:
            run, busy = None, True
        found = list(items.select_for_update().values_list("pk", "failures"))  # type: ignore[attr-defined]
        if not found:
            return
        ((pk, failures),) = found
        blocks = failures + 1 >= TRIES
        counted = failures if blocks and busy else failures + 1
        delay = 2.0 ** max(counted, 1)  # 2 s, 4 s: a failure that is really transient gets its chance
        WorkItem.objects.using(using).filter(pk=pk).update(
            failures=counted,
            lease_expires_at=None,
            owner="",
            available_at=db_now_plus(delay),
            dispatched_at=None,
        )
        if not blocks or run is None or run.status not in WorkflowRun.LIVE:
            return
        cause = error_info(error)
        blocked = ErrorInfo(
            cause.type,
            f"durable_django could not {what} this run {TRIES} times: {cause.message}. Fix the cause "
            "(the traceback below), then run.resume().",
            cause.traceback,
        )
        lifecycle.finish(using, run, WorkflowRun.Status.BLOCKED, error_json=blocked.as_json())
