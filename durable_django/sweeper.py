"""Recovery without a special process: every worker sweeps for work whose message is gone.

It finds work items that are claimable (due and unleased, or with an expired lease) and
whose last wake-up message is older than ``DURABLE_REPUBLISH_AFTER``, and publishes them
again. Several sweepers never resend the same item twice: rows are taken with
``SKIP LOCKED`` and stamped in the same transaction.
"""

from __future__ import annotations

import logging
import threading

from django.db import connections, router, transaction
from django.db.models import Q
from django.db.models.functions import Now

from . import dispatch
from .conf import settings
from .leases import claimable, db_now_plus
from .models import WorkItem

__all__ = ["Sweeper", "sweep"]

logger = logging.getLogger("durable_django")


def sweep() -> int:
    """Republish every claimable item whose message looks lost; returns how many."""
    using = router.db_for_write(WorkItem)
    stale = Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=db_now_plus(-float(settings.REPUBLISH_AFTER)))
    with transaction.atomic(using=using):
        due = list(
            WorkItem.objects.using(using)
            .select_for_update(skip_locked=True)
            .filter(claimable(), stale)
            .order_by("available_at")
            .values_list("pk", "queue")[: int(settings.SWEEP_BATCH)]
        )
        if due:
            WorkItem.objects.using(using).filter(pk__in=[pk for pk, _ in due]).update(dispatched_at=Now())
    for pk, queue in due:
        dispatch.publish(pk, queue)
    if due:
        logger.info("durable_django: sweeper republished %d work item(s)", len(due))
    return len(due)


class Sweeper(threading.Thread):
    """A daemon thread in a worker process that runs :func:`sweep` every interval."""

    def __init__(self) -> None:
        super().__init__(name="durable-sweeper", daemon=True)
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(float(settings.SWEEP_INTERVAL)):
            try:
                sweep()
            except Exception:
                logger.warning("durable_django: sweep failed; retrying next interval", exc_info=True)
            finally:
                # Forked pool children must not inherit an open connection from this thread.
                connections.close_all()

    def stop(self) -> None:
        self._stopped.set()
