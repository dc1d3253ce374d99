"""Recovery without a special process: every worker sweeps for work whose message is gone.

It finds work items that are claimable (due and unleased, or with an expired lease) and
have no wake-up message on its way, and publishes one. Several sweepers never send the
same item twice at once: rows are taken with ``SKIP LOCKED`` and stamped in the same
transaction.
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
    """Publish every claimable item that has no message on its way; returns how many.

    An item never published (a due timer, a retry) always goes. An item whose message
    looks late is republished only if its queue is empty in the broker, since a busy
    queue most likely still holds that message; past ``REPUBLISH_AFTER_BUSY`` it goes
    anyway. So a backlog does not multiply its own messages.
    """
    using = router.db_for_write(WorkItem)
    late = Q(dispatched_at__lte=db_now_plus(-float(settings.REPUBLISH_AFTER)))
    very_late = Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=db_now_plus(-float(settings.REPUBLISH_AFTER_BUSY)))
    candidates = WorkItem.objects.using(using).filter(claimable()).filter(very_late | late)
    busy = {queue for queue in candidates.values_list("queue", flat=True).distinct() if dispatch.queue_length(queue)}
    with transaction.atomic(using=using):
        due = list(
            candidates.filter(very_late | ~Q(queue__in=busy))
            .select_for_update(skip_locked=True)
            .order_by("available_at")
            .values_list("pk", "queue")[: int(settings.SWEEP_BATCH)]
        )
        if due:
            WorkItem.objects.using(using).filter(pk__in=[pk for pk, _ in due]).update(dispatched_at=Now())
    for pk, queue in due:
        dispatch.publish(pk, queue)
    if due:
        logger.info("durable_django: sweeper published %d work item(s)", len(due))
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
