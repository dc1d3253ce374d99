"""The Celery task durable_django registers; found by the project's ``autodiscover_tasks()``.

Its name is explicit and stable, so renaming modules never orphans messages in flight.
"""

from __future__ import annotations

from celery import shared_task

from . import runner, upkeep, worker

__all__ = ["execute"]

worker.connect_signals()


@shared_task(name="durable_django.execute", ignore_result=True)
def execute(item_id: int) -> int:
    """Claim work item ``item_id`` and work on its run; a stale or duplicate message is a no-op."""
    if not isinstance(item_id, int) or isinstance(item_id, bool):
        return 0
    upkeep.discard_broken_connections()
    return runner.work(item_id)
