"""Recovery and timers without a special process: every worker sweeps for work whose message is gone.

It finds work items that are claimable (due and unleased, or with an expired lease) and
have no wake-up message on its way, and publishes one. Several sweepers never send the
same item twice at once: rows are taken with ``SKIP LOCKED`` and stamped in the same
transaction.

Between two full sweeps (every ``SWEEP_INTERVAL``) the sweeper wakes when the next timer
is due, as the database knows it (:func:`~durable_django.store.timers.due_in`), and sends
what is due then, due timers by the batch. It never sleeps longer than
``COUNTDOWN_HINT_MAX``: a timer set meanwhile that comes due sooner travels with its own
countdown message, and a later one is seen before it is due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from django.db import router
from django.db.models import Q, QuerySet

from ..conf import settings
from ..models import WorkItem
from ..ops import prune
from ..store import outbox, owners, timers
from ..store.clock import Now
from ..store.leases import db_now_plus
from . import connections, schedule_firing

__all__ = ["FIRE_GAP", "Sweeper", "prune_expired", "reclaim_dead_owners", "send_due", "sweep"]

logger = logging.getLogger("durable_django")
_PROC = Path("/proc/self/stat").exists()
#: Sweeps in a row at most while each one fills its batch.
_CATCH_UP_ROUNDS = 20
#: Seconds between two sends of due timers at least: when timers come due every few
#: milliseconds, they go by the batch rather than one message each.
FIRE_GAP = 0.05
#: Finished runs one pruning transaction deletes, and such batches one sweep makes at most.
PRUNE_BATCH = 500
PRUNE_ROUNDS = 4


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
    items = WorkItem.objects.using(using)
    never_sent = Q(dispatched_at__isnull=True)
    late = never_sent | Q(dispatched_at__lte=db_now_plus(-settings.REPUBLISH_AFTER))
    published = 0
    # Due-and-unleased and expired, asked apart rather than as one OR: each is then an ordered scan
    # of its own partial index, which marks the entries of deleted items dead as it passes them, so
    # the next sweep skips them. One OR is a bitmap scan, which reads every such entry (a finished
    # step's, a fired timer's) at every sweep until vacuum removes it.
    for stale in (items.ready().filter(late), items.expired().filter(late)):
        for queue in _queues(stale):
            batch = stale.filter(queue=queue)
            if outbox.queue_length(queue):
                very_late = Q(dispatched_at__lte=db_now_plus(-settings.REPUBLISH_AFTER_BUSY))
                batch = batch.filter(never_sent | very_late)
            published += _publish(using, batch)
    if published:
        logger.info("durable_django: sweeper published %d work item(s)", published)
    return published


def _queues(stale: QuerySet[WorkItem], most: int = 100) -> list[str]:
    """The queues ``stale`` items wait in, one index probe each (a few queues, however many items)."""
    found: list[str] = []
    while len(found) < most:
        queue = stale.exclude(queue__in=found).order_by("available_at").values_list("queue", flat=True).first()
        if queue is None:
            return found
        found.append(queue)
    return found


def send_due() -> int:
    """Publish the items that came due and were never sent (timers, retries); due timers by the batch."""
    using = router.db_for_write(WorkItem)
    return _publish(using, timers.never_sent(using).ready())


def _publish(using: str, items: QuerySet[WorkItem]) -> int:
    """Stamp and publish the oldest ``items`` (at most a batch), skipping rows another sweeper holds."""
    return timers.dispatch_due(using, items, settings.SWEEP_BATCH, _fire_batch_size)


def _fire_batch_size(due: int) -> int:
    """Timers to a message: ``due`` split evenly over as few messages as ``FIRE_BATCH`` allows.

    A few due timers are not spread over several pool processes: a message costs a
    transaction, its commit and a dozen statements whatever its size, about 40 timers'
    worth of work against one more timer's. Spread four ways, the 25 timers due every
    50 ms at 500 a second cost the worker twice the CPU, and on a busy machine it fell
    behind for good: the backlog was of small messages, so it never took bigger batches.
    Processes still share the work: one send goes to one process, the next to another.
    """
    messages = -(-due // settings.FIRE_BATCH)
    return max(1, -(-due // max(messages, 1)))


def prune_expired(rounds: int = PRUNE_ROUNDS) -> int:
    """Delete finished runs older than ``DURABLE_RETENTION``, at most ``rounds`` batches; returns runs deleted.

    Bounded per sweep, so a backlog (retention just turned on) is worked off over several
    sweeps instead of holding the sweeper; several sweepers skip each other's batches.
    """
    retention = settings.RETENTION
    if retention is None:
        return 0
    # Each batch commits before it is yielded: stopping after a few leaves no transaction open.
    deleted = sum(batch.runs for batch in islice(prune.prune(retention, batch_size=PRUNE_BATCH), rounds))
    if deleted:
        logger.info("durable_django: deleted %d finished run(s) older than DURABLE_RETENTION", deleted)
    return deleted


def _catch_up(send: Callable[[], int]) -> None:
    for _ in range(_CATCH_UP_ROUNDS):  # a full batch means more are due: go on at once
        if send() < settings.SWEEP_BATCH:
            break


class Sweeper(threading.Thread):
    """A daemon thread in a worker process that runs :func:`sweep` every interval."""

    def __init__(self) -> None:
        super().__init__(name="durable-sweeper", daemon=True)
        self._stopped = threading.Event()

    def run(self) -> None:
        full_at = time.monotonic() + settings.SWEEP_INTERVAL
        sent_at = -FIRE_GAP
        wait = settings.SWEEP_INTERVAL
        while not self._stopped.wait(wait):
            try:
                if time.monotonic() >= full_at:
                    full_at = time.monotonic() + settings.SWEEP_INTERVAL
                    self._full_sweep()
                else:
                    _catch_up(send_due)
                sent_at = time.monotonic()
                wait = self._next_wait(full_at, sent_at)
            except Exception:
                logger.warning("durable_django: sweep failed; retrying next interval", exc_info=True)
                wait = settings.SWEEP_INTERVAL
            finally:
                connections.release_after_sweep()

    @staticmethod
    def _full_sweep() -> None:
        if settings.RECLAIM_DEAD_OWNERS:
            reclaim_dead_owners()
        _catch_up(sweep)
        schedule_firing.sweep()
        prune_expired()

    @staticmethod
    def _next_wait(full_at: float, sent_at: float) -> float:
        """Until the next full sweep, or the next due timer if sooner (never sooner than ``FIRE_GAP`` after a send)."""
        now = time.monotonic()
        # A timer set while the sweeper sleeps and due within COUNTDOWN_HINT_MAX also travels as a
        # countdown; one due later is seen in time if the sweeper never sleeps longer than that.
        wait = min(full_at - now, max(settings.COUNTDOWN_HINT_MAX, FIRE_GAP))
        due = timers.due_in(router.db_for_write(WorkItem))
        if due is not None:
            # The database's clock decides what is due: waking a little late costs a
            # millisecond, waking early a wasted sweep, so round up.
            wait = min(wait, max(due + 0.001, sent_at + FIRE_GAP - now))
        return max(wait, 0.0)

    def stop(self) -> None:
        self._stopped.set()
