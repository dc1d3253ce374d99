"""Database state: runs, their history, their signals, and the work items workers claim.

The database is the only source of truth. A Celery message carries a work item id and
nothing else; losing or duplicating one can delay work, never lose or repeat it.
"""

from .history import HistoryEntry, LostAttempt, Signal, idempotency_key
from .runs import WorkflowRun
from .schedules import Schedule
from .updates import Update
from .work import WorkItem

__all__ = ["HistoryEntry", "LostAttempt", "Schedule", "Signal", "Update", "WorkItem", "WorkflowRun", "idempotency_key"]
