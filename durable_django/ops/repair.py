"""What an operator does to a run that went wrong: retry it, or fork it from a chosen position.

Both keep history honest: a retry re-runs only the step whose failure ended the run (what
came before stays recorded and is replayed), and a fork is a new run that reuses the
recorded outcomes up to a position and runs everything after it anew, with new
idempotency keys.
"""

from __future__ import annotations

import uuid

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction

from ..core.registry import step as lookup_step
from ..core.requests import Kind
from ..exceptions import InvalidRequest, InvalidRunState, RunNotFound, WorkflowIdConflict, WorkflowNotRegistered
from ..models import HistoryEntry, WorkflowRun, WorkItem
from ..runs import check_workflow_id, get_run, resume
from ..store import outbox
from ..store.clock import Now
from ..store.leases import database
from ..store.locking import lock_run

__all__ = ["afork", "aretry", "fork", "retry"]

Status = WorkflowRun.Status
Entry = HistoryEntry.Status


def retry(run: WorkflowRun | str) -> None:
    """Run a failed run's failing step again (fresh attempts), or resume a blocked run.

    A run that failed in workflow code rather than in a step replays from the start, so
    a fixed deployment gets another go. Children failed with their parent are retried too.
    """
    run = get_run(run)
    if run.status == Status.BLOCKED:
        resume(run)
        return
    using = database()
    with transaction.atomic(using=using):
        _retry_locked(using, run)


def _retry_locked(using: str, run: WorkflowRun) -> None:
    locked = lock_run(using, run.pk)
    if locked is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    if locked.status != Status.FAILED:
        raise InvalidRunState(
            f"run {run.workflow_id!r} is {locked.status}; only failed or blocked runs can be retried."
        )
    last = HistoryEntry.objects.using(using).of(run.pk).positions().order_by("-seq").first()
    if last is not None and last.status == Entry.FAILED:
        if last.kind in {Kind.ALL_OF, Kind.ANY_OF}:
            raise InvalidRunState(
                f"run {run.workflow_id!r} failed in a group at #{last.seq}; its resolution is recorded, so it "
                f"cannot be retried in place. Fork it from #{last.seq} instead."
            )
        _reopen(using, run, last)
    WorkflowRun.objects.using(using).filter(pk=run.pk).update(
        status=Status.RUNNING, result_json=None, error_json=None, finished_at=None, updated_at=Now()
    )
    outbox.wake(using, run.pk)


def _reopen(using: str, run: WorkflowRun, entry: HistoryEntry) -> None:
    """Make a failed step or child entry pending again, with its work."""
    HistoryEntry.objects.using(using).filter(pk=entry.pk).update(
        status=Entry.SCHEDULED, result_json=None, error_json=None, attempts=0, started_at=None, finished_at=None
    )
    if entry.kind == Kind.CHILD and entry.child_id is not None:
        child = WorkflowRun.objects.using(using).get(pk=entry.child_id)
        if child.status == Status.FAILED:
            _retry_locked(using, child)
        return
    try:
        definition = lookup_step(entry.name)
    except WorkflowNotRegistered as error:
        raise WorkflowNotRegistered(f"run {run.workflow_id!r} cannot be retried here: {error}") from None
    queue = definition.queue or ""
    item = WorkItem.objects.using(using).create(
        run_id=run.pk,
        kind=WorkItem.Kind.STEP,
        seq=entry.seq,
        queue=queue,
        lease_seconds=definition.lease_seconds,
        dispatched_at=Now(),
    )
    outbox.after_commit(item.pk, queue, using=using)


def fork(run: WorkflowRun | str, from_seq: int, *, workflow_id: str | None = None) -> WorkflowRun:
    """A new run of the same workflow and input that reuses ``run``'s outcomes before ``from_seq``.

    Everything from ``from_seq`` on runs anew. ``from_seq`` must be a yield's position
    whose earlier entries all have outcomes (not the inside of an ``all_of``/``any_of``).
    """
    run = get_run(run)
    using = database()
    entries = list(HistoryEntry.objects.using(using).of(run.pk).filter(seq__lt=from_seq).order_by("seq"))
    at = HistoryEntry.objects.using(using).at(run.pk, from_seq).first()
    if not 0 <= from_seq <= run.next_seq or len(entries) != from_seq:
        raise InvalidRequest(f"run {run.workflow_id!r} has positions 0 to {run.next_seq}; {from_seq} is not one.")
    if at is not None and at.group_seq is not None:
        raise InvalidRequest(f"#{from_seq} is inside the group at #{at.group_seq}; fork from #{at.group_seq}.")
    pending = [entry.seq for entry in entries if entry.status == Entry.SCHEDULED]
    if pending:
        raise InvalidRequest(f"#{pending[0]} has no outcome yet; fork from a position after recorded outcomes only.")
    new_id = check_workflow_id(workflow_id or f"{run.workflow_id[:200]}.fork-{uuid.uuid4().hex[:8]}")
    taken = WorkflowIdConflict(f"workflow_id {new_id!r} is taken by another run; choose another for the fork.")
    if WorkflowRun.objects.using(using).with_id(new_id).exists():
        raise taken
    try:
        return _copy(using, run, entries, from_seq, new_id)
    except IntegrityError:  # started by someone else meanwhile
        raise taken from None


def _copy(using: str, run: WorkflowRun, entries: list[HistoryEntry], from_seq: int, workflow_id: str) -> WorkflowRun:
    with transaction.atomic(using=using):
        new = WorkflowRun.objects.using(using).create(
            workflow_id=workflow_id,
            workflow_name=run.workflow_name,
            input_json=run.input_json,
            next_seq=from_seq,
            status=Status.RUNNING,
            attributes=run.attributes,
            subject_type=run.subject_type,
            subject_id=run.subject_id,
        )
        for entry in entries:
            entry.pk = None
            entry.run_id = new.pk
        HistoryEntry.objects.using(using).bulk_create(entries)
        outbox.wake(using, new.pk)
    return new


async def aretry(run: WorkflowRun | str) -> None:
    """:func:`retry` for async code; it commits on its own."""
    await sync_to_async(retry)(run)


async def afork(run: WorkflowRun | str, from_seq: int, *, workflow_id: str | None = None) -> WorkflowRun:
    """:func:`fork` for async code; it commits on its own."""
    return await sync_to_async(fork)(run, from_seq, workflow_id=workflow_id)
