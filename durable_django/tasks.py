"""The Celery task durable_django registers; found by the project's ``autodiscover_tasks()``.

Its name is explicit and stable, so renaming modules never orphans messages in flight.
"""

from __future__ import annotations

from celery import shared_task

from .store import outbox
from .worker import celery_signals, connections, runner

__all__ = ["execute"]

celery_signals.connect_signals()


@shared_task(name=outbox.TASK_NAME, ignore_result=True)
def execute(item_id: int) -> int:
    """Claim work item ``item_id`` and work on its run; a stale or duplicate message is a no-op."""
    if not isinstance(item_id, int) or isinstance(item_id, bool):
        return 0
    connections.discard_broken_connections()
    return runner.work(item_id)
