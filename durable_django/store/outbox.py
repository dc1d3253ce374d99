"""Wake-up messages: Celery messages that carry a work item id and nothing else.

A message is a hint. Publishing happens after commit and may fail or be lost; the
sweeper republishes whatever is claimable and was not picked up.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.db import transaction

from ..conf import settings
from .clock import Now
from .faults import crash_point, publish_copies

if TYPE_CHECKING:
    from .leases import Claim

__all__ = [
    "FIRE_TASK_NAME",
    "MANY_TASK_NAME",
    "TASK_NAME",
    "after_commit",
    "countdown_hint",
    "publish",
    "publish_many",
    "publish_timers",
    "queue_length",
    "send_message",
    "stale_write_refused",
    "wake",
]

logger = logging.getLogger("durable_django")

#: Counts of refused stale writes in this process (observable by tests and benchmarks).
stale_writes_refused = 0


#: The Celery task every wake-up message names (registered by :mod:`durable_django.tasks`
#: in worker processes). Messages go by this stable name, so the outbox knows no worker code.
TASK_NAME = "durable_django.execute"
#: The task of a message that hands a worker a batch of due timers (a list of work item ids).
FIRE_TASK_NAME = "durable_django.fire"
#: The task of a message that names several work items to take one after the other (a bulk start's).
MANY_TASK_NAME = "durable_django.execute_many"


def send_message(item_id: int | list[int], options: dict[str, Any]) -> None:
    """Put one wake-up message on the broker through the project's Celery app.

    A list of ids goes to the task ``options["task"]`` names (a batch); one id to ``execute``.
    """
    options = dict(options)
    task = options.pop("task", TASK_NAME)
    current_app.send_task(task, (item_id,), **options)


def publish(item_id: int, queue: str, countdown: float | None = None) -> bool:
    """Send the wake-up message; a failure is logged, never raised (the sweeper recovers)."""
    crash_point("publish.before")
    try:
        options: dict[str, Any] = {"retry": False}
        if queue:
            options["queue"] = queue
        if countdown is not None:
            options["countdown"] = countdown
        for _ in range(publish_copies()):
            send_message(item_id, options)
    except Exception:
        logger.warning(
            "durable_django: could not publish work item %s; the sweeper will resend it", item_id, exc_info=True
        )
        return False
    return True


def publish_timers(item_ids: list[int], queue: str) -> bool:
    """Send one message for a batch of due timers; a failure is logged, never raised (the sweeper resends)."""
    return _publish_list(FIRE_TASK_NAME, item_ids, queue, "due timers")


def publish_many(item_ids: list[int], queue: str) -> bool:
    """Send one message naming several work items, taken one after the other (a bulk start's first advances)."""
    return _publish_list(MANY_TASK_NAME, item_ids, queue, "work items")


def _publish_list(task: str, item_ids: list[int], queue: str, what: str) -> bool:
    crash_point("publish.before")
    try:
        options: dict[str, Any] = {"retry": False, "task": task}
        if queue:
            options["queue"] = queue
        for _ in range(publish_copies()):
            send_message(item_ids, options)
    except Exception:
        logger.warning(
            "durable_django: could not publish %d %s; the sweeper will resend them", len(item_ids), what, exc_info=True
        )
        return False
    return True


def queue_length(queue: str) -> int | None:
    """Messages waiting in ``queue`` ("" is Celery's default queue); None if the broker cannot say."""
    app = current_app
    name = queue or app.conf.task_default_queue
    try:
        with app.connection_for_write() as connection:
            channel: Any = connection.default_channel
            return int(channel.queue_declare(queue=name, passive=True).message_count)
    except Exception as error:
        # A queue nobody declared yet holds nothing; anything else is unknown.
        return 0 if "NOT_FOUND" in str(error) else None


@dataclass(frozen=True, slots=True)
class _Wake:
    """The on-commit publish of a run's advance item; a transaction needs one per run."""

    run_id: uuid.UUID
    item_id: int

    def __call__(self) -> None:
        publish(self.item_id, "")


def wake(using: str, run_id: uuid.UUID) -> None:
    """Make the run advance after commit: an advance work item and its message.

    One advance reads everything committed before it, so a transaction that already
    woke this run (say, sending many signals) adds no second item.
    """
    from ..models import WorkItem

    connection = transaction.get_connection(using)
    pending = _pending_wakes(connection)
    earlier = pending.get(run_id)
    # Its item may already have been worked in this same transaction (run_until_idle in a test).
    if earlier is not None and WorkItem.objects.using(using).unleased().filter(pk=earlier).exists():
        return
    item = WorkItem.objects.using(using).create(run_id=run_id, kind=WorkItem.Kind.ADVANCE, dispatched_at=Now())
    transaction.on_commit(_Wake(run_id, item.pk), using=using, robust=True)
    if connection.in_atomic_block:
        pending[run_id] = item.pk


def _pending_wakes(connection: Any) -> dict[uuid.UUID, int]:
    """Run id -> advance item of the wakes waiting for the open transaction to commit.

    Django keeps the open transaction's callbacks in ``run_on_commit`` and replaces that
    list when the transaction ends or a savepoint rolls back (dropping that savepoint's
    callbacks with its rows). The index below is rebuilt whenever the list is another one,
    so thousands of starts or signals in one transaction cost no scan each.
    """
    if not connection.in_atomic_block:
        return {}
    callbacks = connection.run_on_commit
    cached = getattr(connection, "_durable_wakes", None)
    if cached is None or cached[0] is not callbacks:  # holding the old list, a new one cannot reuse its id
        cached = (callbacks, {wake.run_id: wake.item_id for _, wake, _ in callbacks if isinstance(wake, _Wake)})
        connection._durable_wakes = cached
    return cached[1]


def after_commit(item_id: int, queue: str, *, using: str, countdown: float | None = None) -> None:
    transaction.on_commit(partial(publish, item_id, queue, countdown), using=using, robust=True)


def countdown_hint(seconds: float) -> float | None:
    """A short delay also travels as a Celery countdown; a long one is left to the sweeper.

    Durable waits never depend on a message with a long ETA: brokers lose those, and
    workers hold them in memory.
    """
    return seconds if seconds <= settings.COUNTDOWN_HINT_MAX else None


def stale_write_refused(held: Claim) -> None:
    global stale_writes_refused
    stale_writes_refused += 1
    logger.warning(
        "durable_django: refused a late write for run %s step #%s (token %s): "
        "another worker claimed the step since, or it was cancelled",
        held.run_id,
        held.seq,
        held.token,
    )
