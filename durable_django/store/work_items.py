"""The transactions a worker makes, each one short.

Hot path, one commit per step: fence the work item, record the step's outcome, advance
the generator, and schedule and claim the next step, all in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from ..conf import settings
from ..core import engine
from ..core.interpreter import ErrorInfo
from ..core.requests import Kind
from ..models import HistoryEntry, LostAttempt, WorkflowRun, WorkItem
from . import fastpath, generator_cache, lifecycle, observe, outbox
from .advance import advance, lock_run
from .leases import Claim, database, db_now_plus, fence, lease_owner

__all__ = ["park", "record_failure", "record_success", "release", "take"]

Entry = HistoryEntry.Status
#: How long a step waits after landing on a worker without its code.
_PARK_SECONDS = 5.0


def take(item_id: int) -> Claim | None:
    """Claim work item ``item_id`` if it is claimable and act on it.

    A step item comes back as a :class:`Claim` for the caller to run. An advance or a
    due timer is handled right here, and returns the run's next step if this worker
    should run it inline. None means there is nothing to do (the item is gone, leased by
    a live worker, or not due yet).
    """
    using = database()
    with transaction.atomic(using=using):
        item = WorkItem.objects.using(using).filter(pk=item_id).values("run_id", "kind").first()
        if item is None:
            return None
        if item["kind"] == WorkItem.Kind.STEP:
            return _claim_step(using, item_id, item["run_id"])
        # The run first, the lock order every writer keeps.
        run = lock_run(using, item["run_id"], with_input=item["kind"] == WorkItem.Kind.ADVANCE)
        if run is None:
            return None
        if item["kind"] == WorkItem.Kind.TIMER:
            row = _lock_claimable(using, item_id)
            if row is None:
                return None
            WorkItem.objects.using(using).filter(pk=item_id).delete()
            if not _fire(using, run.pk, row["seq"]):
                return None
        # An advance reads every committed signal, so it stands for all the run's waiting
        # advances; with the run locked, none left means another worker did this one.
        elif not WorkItem.objects.using(using).of(run.pk).of_kind(WorkItem.Kind.ADVANCE).unleased().delete()[0]:
            return None
        return advance(using, run, "")


def _lock_claimable(using: str, item_id: int) -> Mapping[str, Any] | None:
    return (
        WorkItem.objects.using(using)
        .select_for_update(skip_locked=True)
        .claimable()
        .filter(pk=item_id)
        .values("token", "seq", "queue", "lease_seconds", "lease_expires_at", "owner")
        .first()
    )


def _claim_step(using: str, item_id: int, run_id: Any) -> Claim | None:
    row = _lock_claimable(using, item_id)
    if row is None:
        return None
    token = row["token"] + 1
    WorkItem.objects.using(using).filter(pk=item_id).update(
        token=token, lease_expires_at=db_now_plus(row["lease_seconds"]), owner=lease_owner()
    )
    entries = HistoryEntry.objects.using(using).at(run_id, row["seq"])
    entries.update(attempts=F("attempts") + 1, started_at=Now())
    entry = entries.values("pk", "name", "args_json", "attempts", "run__workflow_id", "run__generation").get()
    if row["lease_expires_at"] is not None:  # claimable while leased: the last attempt's lease ran out
        LostAttempt.objects.using(using).create(entry_id=entry["pk"], attempt=entry["attempts"] - 1, owner=row["owner"])
    return Claim(
        item_id=item_id,
        token=token,
        run_id=run_id,
        workflow_id=entry["run__workflow_id"],
        generation=entry["run__generation"],
        seq=row["seq"],
        step=entry["name"],
        args_json=entry["args_json"],
        attempt=entry["attempts"],
        queue=row["queue"],
    )


def _fire(using: str, run_id: Any, seq: int) -> bool:
    """A timer is due: end the sleep, or time out the signal wait. False if it was already settled."""
    return bool(
        HistoryEntry.objects.using(using)
        .at(run_id, seq)
        .pending()
        .update(status=Entry.COMPLETED, result_json="null", finished_at=Now())
    )


def record_success(held: Claim, result_json: str, body: Any = None) -> Claim | None:
    """Record a step's result and advance the run, in one transaction.

    ``body``, when given, runs first inside the same transaction: that is an atomic step,
    and it must return the result's JSON (``result_json`` is then ignored).
    """
    fast = fastpath.record_success(held, result_json, body)
    if not isinstance(fast, fastpath.NotTaken):
        return fast
    using = database()
    with transaction.atomic(using=using):
        run = lock_run(using, held.run_id)
        if run is None or not fence(using, held):
            _refused(held)
            return None
        if body is not None:
            result_json = body()
        HistoryEntry.objects.using(using).at(held.run_id, held.seq).update(
            status=Entry.COMPLETED, result_json=result_json, error_json=None, finished_at=Now()
        )
        known = engine.Recorded(Kind.STEP, held.step, held.args_json, engine.Succeeded(result_json))
        return advance(using, run, held.queue, known=(held.seq, known))


def record_failure(held: Claim, error: ErrorInfo, retry_in: timedelta | None) -> Claim | None:
    """Record a failed attempt: schedule the retry, or give up and raise it in the workflow."""
    using = database()
    with transaction.atomic(using=using):
        entries = HistoryEntry.objects.using(using).at(held.run_id, held.seq)
        if retry_in is not None:
            delay = retry_in.total_seconds()
            hint = outbox.countdown_hint(delay)
            retried = (
                WorkItem.objects.using(using)
                .held(held.item_id, held.token)
                .update(
                    lease_expires_at=None,
                    available_at=db_now_plus(delay),
                    dispatched_at=None if hint is None else db_now_plus(delay),
                )
            )
            if not retried:
                _refused(held)
                return None
            entries.update(error_json=error.as_json())
            observe.step_failed(using, held, error.as_dict(), final=False)
            if hint is not None:
                outbox.after_commit(held.item_id, held.queue, using=using, countdown=hint)
            return None
        run = lock_run(using, held.run_id)
        if run is None or not fence(using, held):
            _refused(held)
            return None
        entries.update(status=Entry.FAILED, error_json=error.as_json(), finished_at=Now())
        observe.step_failed(using, held, error.as_dict(), final=True)
        known = engine.Recorded(Kind.STEP, held.step, held.args_json, engine.Failed(error))
        return advance(using, run, held.queue, known=(held.seq, known))


def _refused(held: Claim) -> None:
    # A generator this process fed with the refused result must not be used again.
    generator_cache.discard(held.run_id)
    outbox.stale_write_refused(held)


def park(held: Claim, error: ErrorInfo) -> None:
    """This process lacks the step's code: hand the step back for a while without counting an attempt.

    Another worker (say, one already running the new release) may take it meanwhile. A
    step nobody could run for ``UNKNOWN_CODE_GRACE`` blocks its run until ``resume()``.
    """
    using = database()
    with transaction.atomic(using=using):
        run = lock_run(using, held.run_id)
        parked = (
            WorkItem.objects.using(using)
            .held(held.item_id, held.token)
            .update(lease_expires_at=None, owner="", available_at=db_now_plus(_PARK_SECONDS), dispatched_at=None)
        )
        if not parked or run is None:
            return
        entries = HistoryEntry.objects.using(using).at(held.run_id, held.seq)
        entries.update(attempts=F("attempts") - 1, error_json=error.as_json())
        grace = -settings.UNKNOWN_CODE_GRACE
        if run.status in WorkflowRun.LIVE and entries.filter(scheduled_at__lt=db_now_plus(grace)).exists():
            lifecycle.finish(using, run, WorkflowRun.Status.BLOCKED, error_json=error.as_json())


def release(held: Claim) -> None:
    """Give a claimed step back (hand-off to another worker) without counting an attempt."""
    using = database()
    with transaction.atomic(using=using):
        released = (
            WorkItem.objects.using(using)
            .held(held.item_id, held.token)
            .update(lease_expires_at=None, owner="", dispatched_at=Now())
        )
        if released:
            HistoryEntry.objects.using(using).at(held.run_id, held.seq).update(attempts=F("attempts") - 1)
            outbox.after_commit(held.item_id, held.queue, using=using)
