"""A run's deadline: a timer work item with no history position, which cancels the run when it fires.

The deadline is a time in the run's row (``deadline_at``), fixed by the database's clock
when the run is created; a child's is never later than its parent's. Its timer is an
ordinary timer work item, so the sweeper publishes it when due, ``testing.pass_time``
moves it, and it survives restarts. Firing asks for a cancel with the deadline as its
reason: ``DeadlineExceeded`` (a ``Cancelled``) is raised at the run's current yield.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ..models import WorkflowRun, WorkItem
from . import outbox
from .clock import Now, database_now

__all__ = ["arm", "child_deadline", "deadline_for", "fire"]


def deadline_for(
    using: str, seconds: float | None, inherited: datetime | None = None, *, now: datetime | None = None
) -> datetime | None:
    """The deadline of a run created ``now`` (by the database's clock) to run ``seconds``, capped by ``inherited``."""
    if seconds is None:
        return inherited
    own = (now or database_now(using)) + timedelta(seconds=seconds)
    return own if inherited is None else min(own, inherited)


def child_deadline(using: str, parent: WorkflowRun, seconds: float | None) -> datetime | None:
    """A child's deadline: its own timeout from now, capped by its parent's deadline while that is ahead.

    A deadline that has passed is not inherited: the parent runs its compensation "normally",
    and a child started there (a refund as a workflow, say) runs too, with its own timeout if any.
    """
    inherited = parent.deadline_at
    if inherited is None:
        return deadline_for(using, seconds)
    now = database_now(using)  # one read of the clock, for both the check and the child's own timeout
    return deadline_for(using, seconds, inherited if inherited > now else None, now=now)


def arm(using: str, run_id: uuid.UUID, deadline_at: datetime) -> None:
    """Create the run's deadline timer (sent as a countdown too when it is near)."""
    seconds = max(0.0, (deadline_at - database_now(using)).total_seconds())
    hint = outbox.countdown_hint(seconds)
    item = WorkItem.objects.using(using).create(
        run_id=run_id,
        kind=WorkItem.Kind.TIMER,
        seq=None,
        available_at=deadline_at,
        dispatched_at=None if hint is None else deadline_at,
    )
    if hint is not None:
        outbox.after_commit(item.pk, "", using=using, countdown=hint)


def fire(using: str, run: WorkflowRun) -> None:
    """The deadline passed: cancel the run at its current yield, with the deadline as the reason.

    Only the first cancel counts: a run already cancelled keeps that reason. A blocked run
    keeps the cancel pending and gets it once resumed.
    """
    pending = WorkflowRun.objects.using(using).filter(
        pk=run.pk, status__in=(*WorkflowRun.LIVE, WorkflowRun.Status.BLOCKED), cancel_requested_at__isnull=True
    )
    if pending.update(cancel_requested=True, cancel_requested_at=Now(), deadline_exceeded=True, updated_at=Now()):
        outbox.wake(using, run.pk)
