"""Due timers, fired in batches: one claim of many due timers, their runs advanced together.

A sweeper finds the timers that are due by the database's clock (never a worker's, so none
fires early), stamps them as sent and hands them to the workers by the batch: one message
names many items (:func:`dispatch_due`). A worker takes a batch in one transaction
(:func:`fire_batch`): it locks the runs first and then their timer items (the lock order of
:mod:`.locking`), both ``SKIP LOCKED``, ends the sleeps and times out the signal waits,
deletes the items and advances every run. A worker that dies in the middle rolls the whole
batch back: its items are still there, stamped, and the sweeper sends them again once their
message is late, as for any lost message. The database stays the truth; a message stays a hint.

How soon to look again comes from the database too (:func:`due_in`): the earliest instant
an item that no message is on its way for comes due.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import Q, QuerySet

from ..core import engine
from ..core.registry import workflow_interpreter
from ..core.requests import Kind
from ..exceptions import WorkflowNotRegistered
from ..models import HistoryEntry, Signal, WorkflowRun, WorkItem
from . import deadlines, generator_cache, observe, outbox, poison, run_info, updates
from .advance import advance
from .clock import Now
from .fastpath import Handoff
from .faults import crash_point
from .history import History, outcome_of
from .inbox import Inbox
from .leases import database
from .locking import lock_runs
from .querysets import WorkItemQuerySet

__all__ = ["BatchFailed", "dispatch_due", "due_in", "fire_batch", "never_sent", "wake"]

logger = logging.getLogger("durable_django")
Entry = HistoryEntry.Status
#: How soon a timer whose run's row a caller holds is tried again (as ``work_items.BUSY_RETRY_SECONDS``).
_BUSY_RETRY_SECONDS = 0.25


class BatchFailed(Exception):
    """Something in a batch raised (not the connection): the batch is rolled back; take its items one by one."""


def never_sent(using: str) -> WorkItemQuerySet:
    """Unleased items no message was sent for: timers, retries after a backoff, reclaimed steps."""
    return WorkItem.objects.using(using).unleased().filter(dispatched_at__isnull=True)


def due_in(using: str) -> float | None:
    """Seconds until the next item no message is on its way for comes due, by the database's clock.

    0 or less if one is due now; None if there is none. One index probe
    (``durable_item_unsent``), however many items wait.
    """
    row = never_sent(using).order_by("available_at").annotate(now=Now()).values_list("available_at", "now").first()
    if row is None:
        return None
    available_at, now = row
    return float((available_at - now).total_seconds())


def dispatch_due(using: str, items: QuerySet[WorkItem], limit: int, batch: Callable[[int], int]) -> int:
    """Stamp the oldest of ``items`` as sent (at most ``limit``) and publish them; returns how many.

    Rows another sweeper holds are skipped. Due timers travel ``batch(how many)`` to a
    message, for :func:`fire_batch`; anything else one to a message, as it always did.
    """
    with transaction.atomic(using=using):
        due = list(
            items.select_for_update(skip_locked=True)
            .order_by("available_at")
            .values_list("pk", "queue", "kind")[:limit]
        )
        if due:
            WorkItem.objects.using(using).filter(pk__in=[pk for pk, _, _ in due]).update(dispatched_at=Now())
    timers: dict[str, list[int]] = {}
    for pk, queue, kind in due:
        if kind == WorkItem.Kind.TIMER:
            timers.setdefault(queue, []).append(pk)
        else:
            outbox.publish(pk, queue)
    for queue, ids in timers.items():
        size = batch(len(ids))
        for start in range(0, len(ids), size):
            outbox.publish_timers(ids[start : start + size], queue)
    return len(due)


def fire_batch(item_ids: Sequence[int]) -> int:
    """Fire the due timers among ``item_ids`` and advance their runs, in one transaction; returns how many fired.

    Items already fired, not due, or leased are left alone. A timer whose run's row a
    caller's transaction holds is sent again shortly, on its own. Raises
    :class:`BatchFailed` (after rolling back) if anything but the connection raised: the
    caller then takes the items one at a time, where a failing run is handled alone.
    """
    using = database()
    try:
        with transaction.atomic(using=using):
            return _fire_batch(using, item_ids)
    except poison.TRANSIENT:
        raise  # the connection or the server: the items stay, and are sent again
    except Exception as error:
        logger.warning(
            "durable_django: a batch of %d timers failed; taking them one by one", len(item_ids), exc_info=True
        )
        raise BatchFailed(str(error)) from error


def _fire_batch(using: str, item_ids: Sequence[int]) -> int:
    run_ids = set(WorkItem.objects.using(using).filter(pk__in=item_ids).values_list("run_id", flat=True))
    if not run_ids:
        return 0
    runs = lock_runs(using, run_ids, with_input=True)  # the runs first: the lock order
    for busy in run_ids - runs.keys():
        _retry_busy(using, busy, item_ids)
    if not runs:
        return 0
    items = list(
        WorkItem.objects.using(using)
        .select_for_update(skip_locked=True)
        .claimable()
        .filter(pk__in=item_ids, kind=WorkItem.Kind.TIMER, run_id__in=runs.keys())
        .values_list("pk", "run_id", "seq")
    )
    if not items:
        return 0
    WorkItem.objects.using(using).filter(pk__in=[pk for pk, _, _ in items]).delete()
    woken = wake(using, runs, [(run_id, seq) for _, run_id, seq in items])
    histories = _histories(using, woken)
    ended: list[tuple[WorkflowRun, str, int]] = []
    together = connections[using].vendor == "postgresql"  # _complete's statement is PostgreSQL's
    for count, run_id in enumerate(woken):
        run = runs[run_id]
        handoff = _decide(using, run, histories.get(run_id, {}), together=together)
        if isinstance(handoff, _Completed):
            ended.append((run, handoff.result_json, handoff.next_seq))
        else:  # None: no step of these runs runs inline here; each goes to the queue
            advance(using, run, None, handoff=handoff)
        if count == 0:
            crash_point("timers.mid_batch")
    _complete(using, ended)
    return len(woken)


@dataclass(frozen=True, slots=True)
class _Completed:
    """The run returns as it wakes: it is completed with the batch's others, in one statement."""

    result_json: str
    next_seq: int


def _histories(using: str, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[int, engine.Recorded]]:
    """Every entry of these runs, in one query."""
    found: dict[uuid.UUID, dict[int, engine.Recorded]] = {}
    rows = HistoryEntry.objects.using(using).filter(run_id__in=run_ids).order_by()  # keyed by run and seq: no sort
    for run_id, seq, kind, name, args_json, status, result_json, error_json in rows.values_list(
        "run_id", "seq", "kind", "name", "args_json", "status", "result_json", "error_json"
    ):
        found.setdefault(run_id, {})[seq] = engine.Recorded(
            kind, name, args_json, outcome_of(status, result_json, error_json)
        )
    return found


def _decide(
    using: str, run: WorkflowRun, entries: dict[int, engine.Recorded], *, together: bool
) -> _Completed | Handoff | None:
    """What the locked run does now that it woke, decided here with its history read in bulk.

    A run that simply returns is left to :func:`_complete`; otherwise the decision goes to
    the general way with its generator (a :class:`Handoff`: nothing is replayed twice), or,
    None, the general way decides it all (a run to block, say, or one with children).
    """
    if run.status not in WorkflowRun.LIVE or run.cancel_requested:
        return None
    interpreter = generator_cache.take(run.pk, run.generation, run.next_seq)
    if interpreter is None:
        try:
            interpreter = workflow_interpreter(run.workflow_name, run.input_json)
        except WorkflowNotRegistered:
            return None  # the general way blocks the run, visibly
    history = History.of_entries(using, run.pk, run.next_seq, entries, start=interpreter.position)
    run_info.bind(interpreter, using, run.pk, history.time_at)  # what the code reads of its run
    # A cancel already delivered is replayed from history: as DeadlineExceeded if the deadline sent it.
    decision = engine.decide(interpreter, history, inbox=Inbox(using, run.pk), deadline=run.deadline_exceeded)
    # A run that ends wakes its parent and cancels its live children: only a top-level run
    # that never had a child (none in its history, no earlier generation) ends here.
    simple = (
        together
        and run.parent_id is None
        and run.generation == 0
        and all(entry.kind != Kind.CHILD for entry in entries.values())
    )
    if isinstance(decision.end, engine.Complete) and not decision.commands and simple:
        interpreter.close()
        return _Completed(decision.end.result_json, history.next_seq)
    if any(isinstance(command, engine.Settle) for command in decision.commands):
        # It settles entries the generator has moved past (a group's leaves): the general way
        # reads those from the database, so it replays rather than take this generator.
        interpreter.close()
        return None
    return Handoff(interpreter, decision)


def _complete(using: str, ended: list[tuple[WorkflowRun, str, int]]) -> None:
    """Complete the runs that returned as they woke, as ``lifecycle.finish`` would, a statement for all."""
    if not ended:
        return
    table = WorkflowRun._meta.db_table
    rows = ", ".join(["(%s::uuid, %s::text, %s::integer)"] * len(ended))
    params: list[Any] = [value for run, result, next_seq in ended for value in (run.pk, result, next_seq)]
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS run SET status = 'completed', result_json = done.result, error_json = NULL, "
            "cancel_requested = false, next_seq = done.next_seq, updated_at = statement_timestamp(), "
            "finished_at = statement_timestamp() "
            f"FROM (VALUES {rows}) AS done (id, result, next_seq) WHERE run.id = done.id",
            params,
        )
    WorkItem.objects.using(using).filter(run_id__in=[run.pk for run, _, _ in ended]).delete()
    for run, _, _ in ended:
        observe.run_ended(using, run.pk, run.workflow_id, run.workflow_name, WorkflowRun.Status.COMPLETED)


def _retry_busy(using: str, run_id: uuid.UUID, item_ids: Sequence[int]) -> None:
    for pk, queue in WorkItem.objects.using(using).filter(pk__in=item_ids, run_id=run_id).values_list("pk", "queue"):
        outbox.after_commit(pk, queue, using=using, countdown=_BUSY_RETRY_SECONDS)


def _end_waits(using: str, timers: Iterable[tuple[uuid.UUID, int]]) -> list[uuid.UUID]:
    """End the sleeps and time out the signal and update waits these timers are for; the runs to advance, in order.

    A wait whose signal (or update) is already in the inbox takes it instead (the advance that
    follows does): a message that arrived in time is never lost to a timeout. An entry
    already settled (the signal came, the run was cancelled) wakes nothing.
    """
    where = Q()
    for run_id, seq in timers:
        where |= Q(run_id=run_id, seq=seq)
    if not where:  # an empty Q() matches every entry
        return []
    entries = HistoryEntry.objects.using(using)
    pending = list(entries.pending().filter(where).values_list("run_id", "seq", "kind", "name"))
    slept, timed_out = Q(), Q()
    woken: list[uuid.UUID] = []
    for run_id, seq, kind, name in pending:
        woken.append(run_id)
        if kind == Kind.SIGNAL:
            if not Signal.objects.using(using).inbox(run_id, name).exists():
                timed_out |= Q(run_id=run_id, seq=seq)
        elif kind == Kind.UPDATE:  # as a signal: an update that came in time is taken, not timed out
            if not updates.waiting(using, run_id, name):
                timed_out |= Q(run_id=run_id, seq=seq)
        else:
            slept |= Q(run_id=run_id, seq=seq)
    if slept:
        entries.filter(slept).update(status=Entry.COMPLETED, finished_at=Now(), result_json="null")
    if timed_out:  # no result: a timeout, not a signal of null
        entries.filter(timed_out).update(status=Entry.COMPLETED, finished_at=Now(), result_json=None)
    return list(dict.fromkeys(woken))


def wake(
    using: str, runs: Mapping[uuid.UUID, WorkflowRun], due: Iterable[tuple[uuid.UUID, int | None]]
) -> list[uuid.UUID]:
    """Fire these due timers of the locked ``runs`` (their items taken); the runs to advance now, in order.

    One timer alone or a batch, the same rules: a deadline (no position) cancels its run,
    whose own advance raises ``DeadlineExceeded``; a cancel committed before a timer was taken
    wins the race (the run advances with the timer unfired, so ``Cancelled`` is raised at the
    yield that waits on it, where firing first would let the code run on, or end, with the
    cancel ignored); any other timer ends its sleep or wait, unless that was settled already.
    """
    waits: list[tuple[uuid.UUID, int]] = []
    cancelled: list[uuid.UUID] = []
    for run_id, seq in due:
        if seq is None:
            deadlines.fire(using, runs[run_id])
        elif runs[run_id].cancel_requested:
            cancelled.append(run_id)
        else:
            waits.append((run_id, seq))
    return list(dict.fromkeys([*_end_waits(using, waits), *cancelled]))
