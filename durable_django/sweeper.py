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

from django.db import connections, router, transaction
from django.db.models import Q
from django.db.models.functions import Now

from . import dispatch
from .conf import settings
from .leases import HOST, claimable, db_now_plus
from .models import WorkItem

__all__ = ["Sweeper", "reclaim_dead_owners", "sweep"]

logger = logging.getLogger("durable_django")
_PROC = Path("/proc/self/stat").exists()


def reclaim_dead_owners() -> int:
    """End at once the leases held by processes of this host that no longer exist.

    A pool process killed mid-step (SIGKILL, the OOM killer) would otherwise hold its
    step until the lease runs out, its timeout later. Only this host's processes are
    judged, by pid; the fencing token still refuses anything the old holder might write.
    """
    if not _PROC:  # no /proc (not Linux): leases run their course
        return 0
    using = router.db_for_write(WorkItem)
    held = WorkItem.objects.using(using).filter(lease_expires_at__gt=Now(), owner__startswith=f"{HOST}:")
    dead = [(pk, token) for pk, owner, token in held.values_list("pk", "owner", "token") if not _alive(owner)]
    if not dead:
        return 0
    stale = Q()
    for pk, token in dead:
        stale |= Q(pk=pk, token=token)
    reclaimed = WorkItem.objects.using(using).filter(stale).update(lease_expires_at=Now(), dispatched_at=None)
    if reclaimed:
        logger.warning("durable_django: reclaimed %d step(s) whose worker process died", reclaimed)
    return reclaimed


def _alive(owner: str) -> bool:
    try:
        pid = int(owner.rsplit(":", 1)[1])
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ValueError, IndexError):
        return True  # an owner this code cannot judge is left to its lease
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return state not in {"Z", "X"}  # a zombie has died; its parent just has not reaped it yet


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
                if settings.RECLAIM_DEAD_OWNERS:
                    reclaim_dead_owners()
                sweep()
            except Exception:
                logger.warning("durable_django: sweep failed; retrying next interval", exc_info=True)
            finally:
                # Forked pool children must not inherit an open connection from this thread.
                connections.close_all()

    def stop(self) -> None:
        self._stopped.set()
