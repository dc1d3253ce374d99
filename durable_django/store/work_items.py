"""The transactions a worker makes, each one short.

Hot path, one commit per step: fence the work item, record the step's outcome, advance
the generator, and schedule and claim the next step, all in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F

from ..conf import settings
from ..core import engine
from ..core.interpreter import ErrorInfo
from ..core.requests import Kind
from ..exceptions import LeaseLost
from ..models import HistoryEntry, LostAttempt, WorkflowRun, WorkItem
from . import fastpath, first_advance, generator_cache, lifecycle, observe, outbox, poison, timers
from .advance import advance
from .clock import Now
from .leases import Claim, database, db_now_plus, fence, lease_owner
from .locking import RunBusy, lock_run

__all__ = [
    "BUSY_RETRY_SECONDS",
    "RunBusy",
    "extend_lease",
    "hand_back",
    "heartbeat",
    "park",
    "record_failure",
    "record_success",
    "release",
    "take",
]

Entry = HistoryEntry.Status
#: How long a step waits after landing on a worker without its code.
_PARK_SECONDS = 5.0
#: How soon an item whose run's row a caller holds is tried again.
BUSY_RETRY_SECONDS = 0.25
#: What a worker reads of an item it was sent, and of its run if that may be fresh (one join).
_ITEM_FIELDS = (
    "run_id", "kind", "queue", "run__status", "run__workflow_id", "run__workflow_name", "run__input_json",
    "run__generation",
)  # fmt: skip
logger = logging.getLogger("durable_django")


def take(item_id: int) -> Claim | None:
    """Claim work item ``item_id`` if it is claimable and act on it.

    A step item comes back as a :class:`Claim` for the caller to run. An advance or a
    due timer is handled right here, and returns the run's next step if this worker
    should run it inline. None means there is nothing to do (the item is gone, leased by
    a live worker, or not due yet), or that the run's row is held by a caller's open
    transaction: then the item is tried again shortly.
    """
    using = database()
    item = WorkItem.objects.using(using).filter(pk=item_id).values(*_ITEM_FIELDS).first()
    if item is None:
        return None
    if item["kind"] == WorkItem.Kind.ADVANCE and item["run__status"] == WorkflowRun.Status.PENDING:
        fresh = first_advance.Fresh(
            item["run_id"], item["run__workflow_id"], item["run__workflow_name"], item["run__input_json"],
            item["run__generation"],
        )  # fmt: skip
        try:
            taken = first_advance.advance_fresh(using, fresh, "")
        except poison.TRANSIENT:
            raise
        except Exception as error:  # the workflow's code raised, say: the general way ends the run visibly
            logger.debug("durable_django: first advance of %s goes the general way: %r", item["run_id"], error)
            taken = first_advance.GENERAL
        if not isinstance(taken, first_advance.General):
            return taken
    try:
        with transaction.atomic(using=using):
            if item["kind"] == WorkItem.Kind.STEP:
                return _claim_step(using, item_id, item["run_id"])
            return _advance_or_fire(using, item_id, item["run_id"], item["kind"])
    except RunBusy:
        outbox.publish(item_id, item["queue"], countdown=BUSY_RETRY_SECONDS)
        return None
    except poison.TRANSIENT:
        raise  # the connection or the server: the item stays, and is tried again
    except Exception as error:
        poison.advance_failed(using, item_id, item["run_id"], error)
        return None


def _advance_or_fire(using: str, item_id: int, run_id: Any, kind: str) -> Claim | None:
    # The run first, the lock order every writer keeps.
    run = lock_run(using, run_id, with_input=kind == WorkItem.Kind.ADVANCE, skip_locked=True)
    if run is None:
        return None
    if kind == WorkItem.Kind.TIMER:
        row = _lock_claimable(using, item_id)
        if row is None:
            return None
        WorkItem.objects.using(using).filter(pk=item_id).delete()
        if not timers.wake(using, {run.pk: run}, [(run.pk, row["seq"])]):
            return None  # settled already, or a deadline: the advance it wakes raises DeadlineExceeded
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
    if WorkflowRun.objects.using(using).filter(pk=run_id, cancel_requested=True).exists():
        # No attempt starts once the run is cancelled (say, its running attempt's worker died and
        # the lease ran out): an advance cancels the step instead, under the run's lock.
        outbox.wake(using, run_id)
        return None
    token = row["token"] + 1
    WorkItem.objects.using(using).filter(pk=item_id).update(
        token=token, lease_expires_at=db_now_plus(row["lease_seconds"]), owner=lease_owner()
    )
    entries = HistoryEntry.objects.using(using).at(run_id, row["seq"])
    entries.update(attempts=F("attempts") + 1, started_at=Now())
    entry = entries.values(
        "pk", "name", "args_json", "attempts", "heartbeat_json", "run__workflow_id", "run__generation"
    ).get()
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
        lease_seconds=row["lease_seconds"],
        heartbeat_json=entry["heartbeat_json"],
    )


def record_success(held: Claim, result_json: str, body: Callable[[], str] | None = None) -> Claim | None:
    """Record a step's result and advance the run, in one transaction.

    ``body``, when given, is an atomic step: it runs inside the same transaction once the run
    is locked, and returns the result's JSON (``result_json`` is then ignored). If the run
    was cancelled while the attempt ran, the outcome is kept but recorded as cancelled, so
    ``Cancelled`` is raised at the step's yield (an atomic body does not run at all).

    Raises :class:`RunBusy` if a caller's transaction holds the run: report again shortly.
    """
    fast = fastpath.record_success(held, result_json) if body is None else fastpath.NOT_TAKEN
    if fast is None or isinstance(fast, Claim):
        return fast
    handoff = fast if isinstance(fast, fastpath.Handoff) else None
    using = database()
    try:
        with transaction.atomic(using=using):
            fenced = fastpath.lock_and_fence(held) if body is not None else fastpath.Fenced.NOT_TAKEN
            if fenced is fastpath.Fenced.LEASE_LOST:
                _refused(held)
                return None
            if body is not None and fenced is fastpath.Fenced.YES:
                # The run locked unmoved and the item fenced in one statement: the body, then one more.
                result_json = body()
                fast = fastpath.record_locked(held, result_json)
                if fast is None or isinstance(fast, Claim):
                    return fast
                handoff = fast if isinstance(fast, fastpath.Handoff) else None
            run = lock_run(using, held.run_id, skip_locked=True)
            if run is None or not (fenced is fastpath.Fenced.YES or fence(using, held)):
                _refused(held)
                return None
            cancelled = run.cancel_requested
            if body is not None and fenced is not fastpath.Fenced.YES:
                result_json = None if cancelled else body()  # type: ignore[assignment]
            HistoryEntry.objects.using(using).at(held.run_id, held.seq).update(
                status=Entry.CANCELLED if cancelled else Entry.COMPLETED,
                result_json=result_json,
                error_json=None,
                finished_at=Now(),
            )
            outcome = engine.CANCELLED if cancelled else engine.Succeeded(result_json)
            known = (held.seq, engine.Recorded(Kind.STEP, held.step, held.args_json, outcome))
            if handoff is not None and not _unmoved(run, held):
                handoff.interpreter.close()
                handoff = None
            current, handoff = handoff, None
            return advance(using, run, held.queue, known=known, handoff=current)
    finally:
        if handoff is not None:  # not handed on: it holds a result that may not have been recorded
            handoff.interpreter.close()


def _unmoved(run: WorkflowRun, held: Claim) -> bool:
    """The run is where the fast path left it: the generator it fed may go on."""
    return (
        run.generation == held.generation
        and run.next_seq == held.seq + 1
        and run.status == WorkflowRun.Status.RUNNING
        and not run.cancel_requested
    )


def record_failure(held: Claim, error: ErrorInfo, retry_in: timedelta | None) -> Claim | None:
    """Record a failed attempt: schedule the retry, or give up and raise it in the workflow.

    If the run was cancelled while the attempt ran, no retry follows: the error is kept and
    ``Cancelled`` is raised at the step's yield. Raises :class:`RunBusy` like
    :func:`record_success`.
    """
    using = database()
    with transaction.atomic(using=using):
        run = lock_run(using, held.run_id, skip_locked=True)
        entries = HistoryEntry.objects.using(using).at(held.run_id, held.seq)
        if run is not None and retry_in is not None and not run.cancel_requested:
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
        if run is None or not fence(using, held):
            _refused(held)
            return None
        cancelled = run.cancel_requested
        status = Entry.CANCELLED if cancelled else Entry.FAILED
        entries.update(status=status, error_json=error.as_json(), finished_at=Now())
        observe.step_failed(using, held, error.as_dict(), final=True)
        outcome = engine.CANCELLED if cancelled else engine.Failed(error)
        known = engine.Recorded(Kind.STEP, held.step, held.args_json, outcome)
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
        run = lock_run(using, held.run_id, skip_locked=True)
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
            lifecycle.finish(using, run, WorkflowRun.Status.BLOCKED, error_json=lifecycle.missing_code(error).as_json())


def extend_lease(held: Claim) -> bool:
    """Keep holding ``held`` for another lease period; False if another claim or a cancel took it."""
    using = database()
    return bool(
        WorkItem.objects.using(using)
        .held(held.item_id, held.token)
        .update(lease_expires_at=db_now_plus(held.lease_seconds))
    )


def heartbeat(held: Claim, details_json: str) -> bool:
    """The attempt is alive: extend its lease and keep its progress; True if the run was cancelled.

    Raises :class:`~durable_django.exceptions.LeaseLost` if the step is no longer this
    attempt's (its lease ran out and another attempt claimed it, or it was cancelled before
    it started): the fencing token refuses a zombie here as it refuses its result.
    """
    using = database()
    with transaction.atomic(using=using):
        kept = (
            WorkItem.objects.using(using)
            .held(held.item_id, held.token)
            .update(lease_expires_at=db_now_plus(held.lease_seconds))
        )
        if not kept:
            raise LeaseLost(
                f"attempt {held.attempt} of step {held.step!r} no longer holds it (another attempt took over, or "
                "the step was cancelled); stop: whatever it returns is refused."
            )
        HistoryEntry.objects.using(using).at(held.run_id, held.seq).update(heartbeat_json=details_json)
        return bool(
            WorkflowRun.objects.using(using).filter(pk=held.run_id).values_list("cancel_requested", flat=True).first()
        )


def hand_back(held: Claim) -> None:
    """End the lease now, so another attempt may start at once (the attempt's outcome could not be recorded)."""
    using = database()
    WorkItem.objects.using(using).held(held.item_id, held.token).update(lease_expires_at=Now(), dispatched_at=None)


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
