"""Delete finished runs that nobody needs any more, in short batches.

Only top-level runs that are completed, failed or cancelled, and finished before the
cutoff, are deleted; their history, signals, work items and child runs go with them. A
run with a descendant that is not finished (a child a parent left running, say) stays,
and so does every live or blocked run. Each batch is one short transaction that locks the
runs it deletes, so a ``retry()`` racing with the prune either wins (the run is live
again and stays) or finds the run gone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet

from ..models import WorkflowRun
from ..store.leases import database, db_now_plus

__all__ = ["Batch", "candidates", "prune"]

#: Levels of child runs looked at below one top-level run; deeper trees are left alone.
_MAX_DEPTH = 50


@dataclass(frozen=True, slots=True)
class Batch:
    """What one batch did: top-level runs deleted (or, in a dry run, that would be)."""

    runs: int
    #: Every row deleted with them, by model label (child runs, history, signals, work items).
    rows: dict[str, int]


def candidates(older_than: timedelta) -> QuerySet[WorkflowRun]:
    """Top-level runs finished before ``older_than`` ago, by the database's clock."""
    cutoff = db_now_plus(-older_than.total_seconds())
    return WorkflowRun.objects.using(database()).finished().filter(parent__isnull=True, finished_at__lt=cutoff)


def prune(older_than: timedelta, *, batch_size: int = 500, dry_run: bool = False) -> Iterator[Batch]:
    """Delete :func:`candidates` batch by batch, yielding after each committed batch.

    A dry run deletes nothing and yields the batches that would go.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    using = database()
    after: tuple[datetime | None, uuid.UUID] | None = None
    while True:
        with transaction.atomic(using=using):
            page = candidates(older_than).order_by("finished_at", "pk")
            if after is not None:
                page = page.filter(Q(finished_at__gt=after[0]) | Q(finished_at=after[0], pk__gt=after[1]))
            if not dry_run:
                page = page.select_for_update(skip_locked=True)
            rows = list(page.values_list("pk", "finished_at")[:batch_size])
            if not rows:
                return
            after = (rows[-1][1], rows[-1][0])
            roots = _without_live_descendants(using, [pk for pk, _ in rows])
            deleted: dict[str, int] = {}
            if roots and not dry_run:
                _, deleted = WorkflowRun.objects.using(using).filter(pk__in=roots).delete()
        yield Batch(runs=len(roots), rows=deleted)


def _without_live_descendants(using: str, roots: list[uuid.UUID]) -> list[uuid.UUID]:
    """``roots`` less those with a child, grandchild... that is not finished (or too deep to tell)."""
    root_of = {pk: pk for pk in roots}
    keep = set(roots)
    frontier = list(roots)
    for _ in range(_MAX_DEPTH):
        if not frontier:
            return [pk for pk in roots if pk in keep]
        children = WorkflowRun.objects.using(using).filter(parent_id__in=frontier)
        frontier = []
        for pk, parent_id, status in children.values_list("pk", "parent_id", "status"):
            root_of[pk] = root_of[parent_id]
            if status not in WorkflowRun.FINISHED:
                keep.discard(root_of[pk])
            frontier.append(pk)
    too_deep = {root_of[pk] for pk in frontier}
    return [pk for pk in roots if pk in keep and pk not in too_deep]
