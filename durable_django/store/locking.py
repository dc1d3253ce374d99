"""The locks the store takes, in one order everywhere, so no two transactions wait on each other in a cycle.

The order: **the run's row, then its work items, then its history entries, then its
signals, then a child run's row.** Every transaction that writes about a run keeps it:

- an advance locks the run (:func:`lock_run`), then, to cancel, the run's step items, then
  settles entries (deleting an entry's work before updating the entry), then marks signals
  taken, then asks a child to cancel;
- a worker claiming a step locks the item, then updates its entry (no run lock: a claim
  never changes what the run decided);
- recording a step's outcome locks the run, then the item (the fence), then the entry; an
  atomic step's body runs once the run and the item are held, so its own rows come after them;
- the one-statement fast path locks the run, deletes the item, updates the entry, in that order
  (for an atomic step: one statement locks the run and deletes the item, the body runs, then
  the same statement records it, the run's lock held throughout);
- counting a failure to advance or to record a step (``store/poison.py``) locks the run, then
  the item; when the run is held, the failure that would block it waits for a later one;
- a child never locks its parent: finishing, it leaves a work item for the parent, which
  pulls the child's outcome under its own lock.

Callers' transactions lock a run too (``run.signal()`` shares the row until it commits,
``run.cancel()`` holds it), and a caller may keep its transaction open as long as it likes.
So workers never wait for a run's row: :func:`lock_run` with ``skip_locked`` raises
:class:`RunBusy` at once, and the worker tries again shortly, outside any transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import connections

from ..models import WorkflowRun

__all__ = ["RunBusy", "lock_run", "lock_runs", "shared_status"]

_RUN_FIELDS = (
    "id", "workflow_id", "workflow_name", "status", "next_seq", "generation", "cancel_requested", "parent_id",
    "deadline_at", "deadline_exceeded",
)  # fmt: skip


class RunBusy(Exception):
    """Another transaction holds the run's row (a caller sending a signal, say): try again shortly."""


def lock_run(
    using: str, run_id: uuid.UUID, *, with_input: bool = False, skip_locked: bool = False
) -> WorkflowRun | None:
    """Lock the run's row for this transaction; None if the run is gone.

    ``with_input`` when a replay is likely (a fresh run). Workers pass ``skip_locked``: a
    caller's open transaction (``run.signal()`` holds the row until it commits) must never
    stall a worker, so a held row raises :class:`RunBusy` at once instead of waiting.
    """
    fields = (*_RUN_FIELDS, "input_json") if with_input else _RUN_FIELDS
    runs = WorkflowRun.objects.using(using)
    run = runs.locked(run_id, *fields, skip_locked=skip_locked).first()
    if run is None and skip_locked and runs.filter(pk=run_id).exists():
        raise RunBusy(run_id)
    return run


def lock_runs(using: str, run_ids: Iterable[uuid.UUID], *, with_input: bool = False) -> dict[uuid.UUID, WorkflowRun]:
    """Lock the rows of many runs in one statement, skipping those another transaction holds (a worker never waits)."""
    fields = (*_RUN_FIELDS, "input_json") if with_input else _RUN_FIELDS
    locking = WorkflowRun.objects.using(using).select_for_update(no_key=True, skip_locked=True)
    return {run.pk: run for run in locking.filter(pk__in=list(run_ids)).only(*fields)}


def shared_status(using: str, run_id: uuid.UUID) -> str | None:
    """The run's status, its row share-locked until the transaction ends (``FOR SHARE`` on PostgreSQL).

    Senders share the row with one another; a worker's ``FOR NO KEY UPDATE`` excludes them,
    so a worker never finishes a run while a signal to it is about to commit unseen. (SQLite
    has no row locks: its transactions already take the whole database, one at a time.)
    """
    if connections[using].vendor != "postgresql":
        return WorkflowRun.objects.using(using).filter(pk=run_id).values_list("status", flat=True).first()
    table = WorkflowRun._meta.db_table
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT status FROM {table} WHERE id = %s FOR SHARE", [run_id])
        row = cursor.fetchone()
    return None if row is None else str(row[0])
