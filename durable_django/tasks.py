"""The Celery task durable_django registers; found by the project's ``autodiscover_tasks()``.

Its name is explicit and stable, so renaming modules never orphans messages in flight.
"""

from __future__ import annotations

from celery import shared_task

from .store import outbox
from .worker import celery_signals, connections, runner

__all__ = ["execute", "execute_many", "fire"]

celery_signals.connect_signals()


@shared_task(name=outbox.TASK_NAME, ignore_result=True)
def execute(item_id: int) -> int:
    """Claim work item ``item_id`` and work on its run; a stale or duplicate message is a no-op."""
    if not isinstance(item_id, int) or isinstance(item_id, bool):
        return 0
    connections.discard_broken_connections()
    return runner.work(item_id)


@shared_task(name=outbox.FIRE_TASK_NAME, ignore_result=True)
def fire(item_ids: list[int]) -> int:
    """Fire a batch of due timers and advance their runs; items already fired or not due are left alone."""
    if not _ids(item_ids):
        return 0
    connections.discard_broken_connections()
    return runner.fire(item_ids)


@shared_task(name=outbox.MANY_TASK_NAME, ignore_result=True)
def execute_many(item_ids: list[int]) -> int:
    """Claim and work several items one after the other, as many ``execute`` messages would."""
    if not _ids(item_ids):
        return 0
    connections.discard_broken_connections()
    return runner.work_many(item_ids)


def _ids(item_ids: object) -> bool:
    return isinstance(item_ids, list) and all(isinstance(pk, int) and not isinstance(pk, bool) for pk in item_ids)
