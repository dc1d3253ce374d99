"""One statement per step on PostgreSQL, for the common case of a run going from step to step.

When this worker holds the run's live generator, it feeds the step's result to it first
and sees what comes next. If that is the next step for this same worker, or the end of
the run, one SQL statement checks that nothing moved meanwhile (same generation and
position, still running, no cancel pending, this worker's lease still valid), then
records the result, takes the next position and leases the next step, and commits.
Anything else (a cancel, a signal wait, a group, a child, a stale lease, SQLite) goes
the general way in :mod:`store`, which decides the same thing under the run's lock.

The statement locks the run first and the work item second, the order every writer keeps.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction

from ..conf import settings
from ..core import engine
from ..core.interpreter import Interpreter
from ..core.registry import step as lookup_step
from ..core.requests import Kind, StepCall
from ..exceptions import WorkflowNotRegistered
from ..models import HistoryEntry, WorkflowRun, WorkItem
from . import generator_cache, observe
from .leases import Claim, database, lease_owner

__all__ = ["NOT_TAKEN", "NotTaken", "record_success"]


class NotTaken:
    """This step is not for the one-statement path; the general way records it."""


NOT_TAKEN = NotTaken()

_RUN, _ENTRY, _ITEM = (model._meta.db_table for model in (WorkflowRun, HistoryEntry, WorkItem))

_RECORD = f"""
WITH run AS (
    SELECT id FROM {_RUN}
    WHERE id = %(run)s AND generation = %(generation)s AND next_seq = %(expected)s
      AND status = 'running' AND NOT cancel_requested AND parent_id IS NULL
    FOR NO KEY UPDATE
), fence AS (
    DELETE FROM {_ITEM} WHERE id = %(item)s AND token = %(token)s AND EXISTS (SELECT 1 FROM run) RETURNING id
), done AS (
    UPDATE {_ENTRY} SET status = 'completed', result_json = %(result)s, error_json = NULL,
        finished_at = statement_timestamp()
    WHERE run_id = %(run)s AND seq = %(seq)s AND EXISTS (SELECT 1 FROM fence)
)"""

_NEXT_STEP = (
    _RECORD
    + f""", moved AS (
    UPDATE {_RUN} SET next_seq = %(next_seq)s, updated_at = statement_timestamp()
    WHERE id = %(run)s AND EXISTS (SELECT 1 FROM fence)
), opened AS (
    INSERT INTO {_ENTRY} (run_id, seq, kind, name, args_json, status, attempts, started_at)
    SELECT %(run)s, %(next)s, 'step', %(name)s, %(args)s, 'scheduled', 1, statement_timestamp()
    WHERE EXISTS (SELECT 1 FROM fence)
), leased AS (
    INSERT INTO {_ITEM} (run_id, kind, seq, queue, lease_expires_at, lease_seconds, token, owner, dispatched_at)
    SELECT %(run)s, 'step', %(next)s, %(queue)s, statement_timestamp() + make_interval(secs => %(lease)s),
        %(lease)s, 1, %(owner)s, statement_timestamp()
    WHERE EXISTS (SELECT 1 FROM fence) RETURNING id
)
SELECT (SELECT id FROM leased)"""
)

_COMPLETE = (
    _RECORD
    + f""", moved AS (
    UPDATE {_RUN} SET status = 'completed', result_json = %(final)s, error_json = NULL, cancel_requested = false,
        next_seq = %(next_seq)s, updated_at = statement_timestamp(), finished_at = statement_timestamp()
    WHERE id = %(run)s AND EXISTS (SELECT 1 FROM fence)
)
SELECT (SELECT count(*) FROM fence)"""
)


def record_success(held: Claim, result_json: str, body: Any = None) -> Claim | NotTaken | None:
    """Record ``held``'s result and go on in one statement, or return :data:`NOT_TAKEN`.

    ``body`` is an atomic step's function: it runs in the same transaction, first.
    """
    using = database()
    connection = connections[using]
    if not settings.FAST_PATH or connection.vendor != "postgresql" or connection.in_atomic_block:
        return NOT_TAKEN
    interpreter = generator_cache.take(held.run_id, held.generation, held.seq + 1)
    if interpreter is None:
        return NOT_TAKEN
    if interpreter.position != held.seq:
        interpreter.close()
        return NOT_TAKEN
    if body is None:
        return _go_on(using, held, interpreter, result_json, keep_on_fallback=True)
    # The atomic step's writes, the result and the next lease commit together. Its result is
    # only known inside, so if the general way must take over, the generator (already fed
    # that result) is dropped and the step runs again there; its writes commit once either way.
    try:
        with transaction.atomic(using=using):
            outcome = _go_on(using, held, interpreter, body(), keep_on_fallback=False)
            if isinstance(outcome, NotTaken):
                raise _Rollback
            return outcome
    except _Rollback:
        return NOT_TAKEN


class _Rollback(Exception):
    pass


def _go_on(
    using: str, held: Claim, interpreter: Interpreter, result_json: str, *, keep_on_fallback: bool
) -> Claim | NotTaken | None:
    known = engine.Recorded(Kind.STEP, held.step, held.args_json, engine.Succeeded(result_json))
    decision = engine.decide(interpreter, {held.seq: known})
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
    following = _next_step(decision, held)
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
            )
            cursor.execute(_NEXT_STEP, params)
            item_id = cursor.fetchone()[0]
            if item_id is not None:
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
                )
        elif isinstance(decision.end, engine.Complete) and not decision.commands:
            cursor.execute(_COMPLETE, {**params, "final": decision.end.result_json})
            if cursor.fetchone()[0] == 1:
                interpreter.close()
                observe.run_ended(using, held.run_id, held.workflow_id, interpreter.name, WorkflowRun.Status.COMPLETED)
                return None
    # Not for this path, or something moved: the general way decides again under the lock. It
    # can reuse the generator if that stopped right after the result, where the run will be;
    # not if it went on past a patch marker or a state, whose notes this decision alone holds.
    if keep_on_fallback and interpreter.position == held.seq + 1:
        generator_cache.put(held.run_id, held.generation, held.seq + 1, interpreter)
    else:
        interpreter.close()
    return NOT_TAKEN


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
    return request, queue, definition.timeout_seconds + settings.LEASE_GRACE
