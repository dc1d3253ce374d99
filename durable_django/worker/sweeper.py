"""Recovery without a special process: every worker sweeps for work whose message is gone.

It finds work items that are claimable (due and unleased, or with an expired lease) and
have no wake-up message on its way, and publishes one. Several sweepers never send the
same item twice at once: rows are taken with ``SKIP LOCKED`` and stamped in the same
transaction.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from django.db import router, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Now

from ..conf import settings
from ..models import WorkItem
from ..store import outbox, owners
from ..store.leases import db_now_plus
from . import connections, schedule_firing

__all__ = ["Sweeper", "reclaim_dead_owners", "sweep"]

logger = logging.getLogger("durable_django")
_PROC = Path("/proc/self/stat").exists()
#: Sweeps in a row at most while each one fills its batch.
_CATCH_UP_ROUNDS = 20


def reclaim_dead_owners() -> int:
    """End at once the leases held by processes that no longer exist, as far as this process can tell.

    A pool process killed mid-step (SIGKILL, the OOM killer) would otherwise hold its step
    until the lease runs out, its timeout later. Only processes this sweeper can see are
    judged: same host, same PID namespace, same boot (:mod:`~durable_django.store.owners`);
    the fencing token still refuses anything the old holder might write.
    """
    if not _PROC:  # no /proc (not Linux): leases run their course
        return 0
    using = router.db_for_write(WorkItem)
    held = WorkItem.objects.using(using).leased().filter(owner__startswith=f"{owners.HOST}:")
    dead = [(pk, token) for pk, owner, token in held.values_list("pk", "owner", "token") if owners.is_dead(owner)]
    if not dead:
        return 0
    stale = Q()
    for pk, token in dead:
        stale |= Q(pk=pk, token=token)
    reclaimed = WorkItem.objects.using(using).filter(stale).update(lease_expires_at=Now(), dispatched_at=None)
    if reclaimed:
        logger.warning("durable_django: reclaimed %d step(s) whose worker process died", reclaimed)
    return reclaimed


def sweep() -> int:
    """Publish claimable items that have no message on its way; returns how many.

    An item never published (a due timer, a retry, a reclaimed step) always goes. An item
    whose message looks late goes after ``REPUBLISH_AFTER`` if its queue is empty in the
    broker; if the queue is busy it most likely still holds that message, so only after
    ``REPUBLISH_AFTER_BUSY``, whatever else the queue holds: that bound is what operators
    are promised. A duplicate costs a worker one query; an item is resent at most once per
    bound, so a backlog grows by one message per item per bound at most.
    """
    using = router.db_for_write(WorkItem)
    items = WorkItem.objects.using(using).claimable()
    never_sent = Q(dispatched_at__isnull=True)
    stale = items.filter(never_sent | Q(dispatched_at__lte=db_now_plus(-settings.REPUBLISH_AFTER)))
    published = 0
    for queue in stale.values_list("queue", flat=True).distinct():
        batch = stale.filter(queue=queue)
        if outbox.queue_length(queue):
            very_late = Q(dispatched_at__lte=db_now_plus(-settings.REPUBLISH_AFTER_BUSY))
            batch = batch.filter(never_sent | very_late)
        published += _publish(using, batch)
    if published:
        logger.info("durable_django: sweeper published %d work item(s)", published)
    return published


def _publish(using: str, items: QuerySet[WorkItem]) -> int:
    """Stamp and publish the oldest ``items`` (at most a batch), skipping rows another sweeper holds."""
    limit = settings.SWEEP_BATCH
    with transaction.atomic(using=using):
        due = list(
            items.select_for_update(skip_locked=True).order_by("available_at").values_list("pk", "queue")[:limit]
        )
        if due:
            WorkItem.objects.using(using).filter(pk__in=[pk for pk, _ in due]).update(dispatched_at=Now())
    for pk, queue in due:
        outbox.publish(pk, queue)
    return len(due)


class Sweeper(threading.Thread):
    """A daemon thread in a worker process that runs :func:`sweep` every interval."""

    def __init__(self) -> None:
        super().__init__(name="durable-sweeper", daemon=True)
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(settings.SWEEP_INTERVAL):
            try:
                if settings.RECLAIM_DEAD_OWNERS:
                    reclaim_dead_owners()
                for _ in range(_CATCH_UP_ROUNDS):  # a full batch means more are due: go on at once
                    if sweep() < settings.SWEEP_BATCH:
                        break
                schedule_firing.sweep()
            except Exception:
                logger.warning("durable_django: sweep failed; retrying next interval", exc_info=True)
            finally:
                connections.release_after_sweep()

    def stop(self) -> None:
        self._stopped.set()
