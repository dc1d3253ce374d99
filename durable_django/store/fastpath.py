"""One statement per step on PostgreSQL, for the common case of a run going from step to step.

When this worker holds the run's live generator, it feeds an external step's result to it
first and sees what comes next. If that is the next step for this same worker, or the end
of a top-level run, one SQL statement checks that nothing moved meanwhile (same generation
and position, still running, no cancel pending, the run's row not held by a caller, this
worker's lease still valid), then records the result, takes the next position and leases
the next step, and commits. Anything else (a cancel, a signal wait, a group, a child's end,
the end of a run with a deadline, a held row, SQLite) goes the general way in :mod:`.work_items`, which takes over this
decision under the run's lock, with the same generator: nothing is replayed.

The statement locks the run first and the work item second, the order every writer keeps.
An atomic step's body must run under the run's lock, so it takes two, in one transaction: one
locks the run and fences the item (:func:`lock_and_fence`), the body runs, and the same
statement as above (the locked run's row as the proof of the lease) records the result and
goes on (:func:`record_locked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.db import connections

from ..conf import settings
from ..core import engine
from ..core.interpreter import Interpreter
from ..core.registry import step as lookup_step
from ..core.requests import Kind, StepCall
from ..exceptions import WorkflowNotRegistered
from ..models import HistoryEntry, WorkflowRun, WorkItem
from . import generator_cache, observe
from .inbox import Inbox
from .leases import Claim, database, lease_owner

__all__ = ["NOT_TAKEN", "Fenced", "Handoff", "NotTaken", "lock_and_fence", "record_locked", "record_success"]


class NotTaken:
    """This step is not for the one-statement path; the general way records it."""


NOT_TAKEN = NotTaken()

_RUN, _ENTRY, _ITEM = (model._meta.db_table for model in (WorkflowRun, HistoryEntry, WorkItem))

# The run, locked if it is where this step left it; the step's item deleted if this worker's
# lease on it still holds (the fence). For an atomic step the caller did both already, in this
# transaction before the body ran (:func:`lock_and_fence`): then the locked run is the proof.
_RUN_AND_FENCE = f"""
WITH run AS (
    SELECT id FROM {_RUN}
    WHERE id = %(run)s AND generation = %(generation)s AND next_seq = %(expected)s
      AND status = 'running' AND NOT cancel_requested {{only}}
    FOR NO KEY UPDATE SKIP LOCKED
), fence AS (
    {{fence}}
)"""
_FENCES = {
    False: f"DELETE FROM {_ITEM} WHERE id = %(item)s AND token = %(token)s AND EXISTS (SELECT 1 FROM run) RETURNING id",
    True: "SELECT id FROM run",
}
_DONE = f""", done AS (
    UPDATE {_ENTRY} SET status = 'completed', result_json = %(result)s, error_json = NULL,
        finished_at = statement_timestamp()
    WHERE run_id = %(run)s AND seq = %(seq)s AND EXISTS (SELECT 1 FROM fence)
)"""

_LOCK_AND_FENCE = (
    _RUN_AND_FENCE.format(only="", fence=_FENCES[False])
    + "\nSELECT (SELECT count(*) FROM run), (SELECT count(*) FROM fence)"
)

_NEXT_STEP_TAIL = f""", moved AS (
    UPDATE {_RUN} SET next_seq = %(next_seq)s, updated_at = statement_timestamp()
    WHERE id = %(run)s AND EXISTS (SELECT 1 FROM fence)
), opened AS (
    INSERT INTO {_ENTRY} (run_id, seq, kind, name, args_json, status, attempts, started_at, scheduled_at)
    SELECT %(run)s, %(next)s, 'step', %(name)s, %(args)s, 'scheduled', 1, statement_timestamp(),
        COALESCE(%(scheduled_at)s::timestamptz, statement_timestamp())
    WHERE EXISTS (SELECT 1 FROM fence)
), leased AS (
    INSERT INTO {_ITEM} (run_id, kind, seq, queue, lease_expires_at, lease_seconds, token, owner, dispatched_at)
    SELECT %(run)s, 'step', %(next)s, %(queue)s, statement_timestamp() + make_interval(secs => %(lease)s),
        %(lease)s, 1, %(owner)s, statement_timestamp()
    WHERE EXISTS (SELECT 1 FROM fence) RETURNING id
)
SELECT (SELECT id FROM leased)"""
_NEXT_STEP = {
    locked: _RUN_AND_FENCE.format(only="", fence=fence) + _DONE + _NEXT_STEP_TAIL for locked, fence in _FENCES.items()
}

# A child's end wakes its parent, and a run with a deadline has the deadline's timer to drop: the general way's to do.
_COMPLETE_TAIL = f""", moved AS (
    UPDATE {_RUN} SET status = 'completed', result_json = %(final)s, error_json = NULL, cancel_requested = false,
        next_seq = %(next_seq)s, updated_at = statement_timestamp(), finished_at = statement_timestamp()
    WHERE id = %(run)s AND EXISTS (SELECT 1 FROM fence)
)
SELECT (SELECT count(*) FROM fence)"""
_COMPLETE = {
    locked: _RUN_AND_FENCE.format(only="AND parent_id IS NULL AND deadline_at IS NULL", fence=fence)
    + _DONE
    + _COMPLETE_TAIL
    for locked, fence in _FENCES.items()
}


@dataclass(frozen=True, slots=True)
class Handoff:
    """The step's result is fed to the live generator, but what comes next is not for this path.

    The general way applies ``decision`` under the run's lock with this same generator, so
    nothing is replayed (unless the run moved meanwhile: then it discards both).
    """

    interpreter: Interpreter
    decision: engine.Decision


class Fenced(Enum):
    """What :func:`lock_and_fence` found."""

    #: The run is locked and unmoved, the step's item deleted: the body may run.
    YES = "fenced"
    #: The run is locked and unmoved, but a newer claim holds the item: the outcome is refused.
    LEASE_LOST = "lease lost"
    #: Nothing was changed: a cancel, a held row, a run that moved, no live generator, SQLite.
    NOT_TAKEN = "not taken"


def lock_and_fence(held: Claim) -> Fenced:
    """In the caller's transaction, lock the run of an atomic step and delete the step's item, in one statement.

    Only where :func:`record_locked` can then go on in one statement (PostgreSQL, this
    worker holds the run's live generator, the run unmoved): else :attr:`Fenced.NOT_TAKEN`.
    """
    using = database()
    if not settings.FAST_PATH or connections[using].vendor != "postgresql":
        return Fenced.NOT_TAKEN
    if not generator_cache.matches(held.run_id, held.generation, held.seq + 1):
        return Fenced.NOT_TAKEN
    params: dict[str, Any] = {"run": held.run_id, "generation": held.generation, "expected": held.seq + 1,
                              "item": held.item_id, "token": held.token}  # fmt: skip
    with connections[using].cursor() as cursor:
        cursor.execute(_LOCK_AND_FENCE, params)
        locked, fenced = cursor.fetchone()
    if not locked:
        return Fenced.NOT_TAKEN
    return Fenced.YES if fenced else Fenced.LEASE_LOST


def record_success(held: Claim, result_json: str) -> Claim | NotTaken | Handoff | None:
    """Record an external step's result and go on in one statement; else :data:`NOT_TAKEN` or a :class:`Handoff`.

    Atomic steps come to :func:`record_locked` instead: their body must run after the run is
    locked (the lock order: the run first, then whatever the body locks).
    """
    using = database()
    connection = connections[using]
    if not settings.FAST_PATH or connection.vendor != "postgresql" or connection.in_atomic_block:
        return NOT_TAKEN
    return _record(using, held, result_json, locked=False)


def record_locked(held: Claim, result_json: str) -> Claim | NotTaken | Handoff | None:
    """Record an atomic step's result and go on in one statement, in the caller's transaction.

    Only after :func:`lock_and_fence` returned :attr:`Fenced.YES` in this transaction (which
    checked what this path needs) and the step's body ran since; the transaction commits when
    the caller's block ends. Returns as :func:`record_success` does.
    """
    return _record(database(), held, result_json, locked=True)


def _record(using: str, held: Claim, result_json: str, *, locked: bool) -> Claim | NotTaken | Handoff | None:
    if not generator_cache.matches(held.run_id, held.generation, held.seq + 1):
        return NOT_TAKEN
    interpreter = generator_cache.take(held.run_id, held.generation, held.seq + 1)
    if interpreter is None:
        return NOT_TAKEN
    if interpreter.position != held.seq:  # a leaf of a group: the general way feeds it, with this generator
        generator_cache.put(held.run_id, held.generation, held.seq + 1, interpreter)
        return NOT_TAKEN
    known = engine.Recorded(Kind.STEP, held.step, held.args_json, engine.Succeeded(result_json))
    # The inbox is read without the run's lock; only an advance holding the lock takes a signal,
    # and none can while the run waits on this step, so what it finds is still there under the lock.
    decision = engine.decide(interpreter, {held.seq: known}, inbox=Inbox(using, held.run_id))
    params: dict[str, Any] = {
        "run": held.run_id,
        "generation": held.generation,
        "expected": held.seq + 1,
        "item": held.item_id,
        "token": held.token,
        "seq": held.seq,
        "result": result_json,
        "next_seq": held.seq + 1,
    }
    # A time the code read (durable.now()) before the next step is recorded with that step's entry;
    # one read anywhere else goes the general way.
    read_at = interpreter.reads.unwritten.get(held.seq + 1)
    following = None if set(interpreter.reads.unwritten) - {held.seq + 1} else _next_step(decision, held)
    with connections[using].cursor() as cursor:
        if following is not None:
            request, definition_queue, lease = following
            params.update(
                next=held.seq + 1,
                next_seq=held.seq + 2,
                name=request.name,
                args=request.args_json,
                queue=definition_queue,
                lease=lease,
                owner=lease_owner(),
                scheduled_at=read_at,
            )
            cursor.execute(_NEXT_STEP[locked], params)
            item_id = cursor.fetchone()[0]
            if item_id is not None:
                interpreter.reads.unwritten.pop(held.seq + 1, None)
                generator_cache.put(held.run_id, held.generation, held.seq + 2, interpreter)
                return Claim(
                    item_id=item_id,
                    token=1,
                    run_id=held.run_id,
                    workflow_id=held.workflow_id,
                    generation=held.generation,
                    seq=held.seq + 1,
                    step=request.name,
                    args_json=request.args_json,
                    attempt=1,
                    queue=definition_queue,
                    lease_seconds=lease,
                )
        elif isinstance(decision.end, engine.Complete) and not decision.commands:
            cursor.execute(_COMPLETE[locked], {**params, "final": decision.end.result_json})
            if cursor.fetchone()[0] == 1:
                interpreter.close()
                observe.run_ended(using, held.run_id, held.workflow_id, interpreter.name, WorkflowRun.Status.COMPLETED)
                return None
    # Not for this path, or something moved (a cancel, a locked run, a stale lease): the
    # general way checks under the lock and goes on from this decision if nothing moved.
    return Handoff(interpreter, decision)


def _next_step(decision: engine.Decision, held: Claim) -> tuple[StepCall, str, float] | None:
    """The next step, if the decision is only that and it belongs on this worker's queue."""
    if decision.end is not None or len(decision.commands) != 1:
        return None
    command = decision.commands[0]
    if not isinstance(command, engine.Open) or command.group is not None or command.seq != held.seq + 1:
        return None
    request = command.request
    if not isinstance(request, StepCall):
        return None
    try:
        definition = lookup_step(request.name)
    except WorkflowNotRegistered:
        return None
    queue = definition.queue or ""
    if queue != held.queue:
        return None
    return request, queue, definition.lease_seconds
