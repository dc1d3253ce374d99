"""A fresh run's first advance in one statement on PostgreSQL, as :mod:`.fastpath` does for steps.

A run that was just started has no history, so its generator runs to its first request
without a query. When that request is a step or a sleep (what most workflows begin with),
one statement locks the run (still fresh, not cancelled, not held by a caller), takes the
run's advance items, opens the history entry, inserts its work item (a step leased to this
worker, or a timer) and moves the run, and commits. Anything else (a signal wait, a group,
a child, a patch marker, the end at once, a held run, SQLite, a transaction already open)
goes the general way in :mod:`.work_items`, which decides it again under the run's lock.

The statement locks the run first and its items second, the order every writer keeps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, transaction

from ..conf import settings
from ..core import codec, engine
from ..core.interpreter import Interpreter
from ..core.registry import step as lookup_step
from ..core.registry import workflow_interpreter
from ..core.requests import Kind, Sleep, StepCall
from ..exceptions import WorkflowNotRegistered
from ..models import HistoryEntry, WorkflowRun, WorkItem
from . import generator_cache, outbox, poison, run_info
from .faults import crash_point
from .history import History
from .inbox import Inbox
from .leases import Claim, lease_owner

__all__ = ["GENERAL", "Fresh", "General", "advance_fresh", "advance_many"]

_RUN, _ENTRY, _ITEM = (model._meta.db_table for model in (WorkflowRun, HistoryEntry, WorkItem))
#: What a fresh run's first advance reads of it, in the order of :class:`Fresh`'s fields.
_RUN_FIELDS = ("run_id", "run__workflow_id", "run__workflow_name", "run__input_json", "run__generation")


class General:
    """Not for the one-statement path: the general way takes this advance."""


GENERAL = General()

# The run is found by its key and its items by the run's id only, whatever the statistics say: the
# checks on status and lease are written so that no index can serve them (``(...) IS TRUE``).
# Written plainly, the planner read every pending run's index entry when statistics said few
# were pending (a bulk start's backlog: 1.8 ms at 5,000), and with no statistics it read the
# whole ``durable_item_ready`` index to AND it with the run's (1.9 ms at 55,000 items), so a
# first advance slowed down as the backlog and the tables grew.
_FIRST = f"""
WITH run AS (
    SELECT id FROM {_RUN}
    WHERE id = %(run)s AND generation = %(generation)s AND next_seq = 0 AND (status = 'pending') IS TRUE
      AND NOT cancel_requested
    FOR NO KEY UPDATE SKIP LOCKED
), taken AS (
    DELETE FROM {_ITEM}
    WHERE run_id = %(run)s AND kind = 'advance' AND (lease_expires_at IS NULL) IS TRUE AND EXISTS (SELECT 1 FROM run)
    RETURNING id
), moved AS (
    UPDATE {_RUN} SET next_seq = 1, status = %(status)s, updated_at = statement_timestamp()
    WHERE id = %(run)s AND EXISTS (SELECT 1 FROM taken)
), due AS (
    SELECT COALESCE(%(until)s::timestamptz, statement_timestamp() + make_interval(secs => %(seconds)s)) AS at
), opened AS (
    INSERT INTO {_ENTRY} (run_id, seq, kind, name, args_json, status, attempts, started_at, scheduled_at, fire_at)
    SELECT %(run)s, 0, %(kind)s, %(name)s, %(args)s, 'scheduled', %(attempts)s,
        CASE WHEN %(inline)s THEN statement_timestamp() END,
        COALESCE(%(scheduled_at)s::timestamptz, statement_timestamp()),
        CASE WHEN %(kind)s = 'sleep' THEN (SELECT at FROM due) END
    WHERE EXISTS (SELECT 1 FROM taken)
), item AS (
    INSERT INTO {_ITEM} (run_id, kind, seq, queue, available_at, lease_expires_at, lease_seconds, token, owner,
        dispatched_at, failures)
    SELECT %(run)s, %(item_kind)s, 0, %(queue)s,
        CASE WHEN %(kind)s = 'sleep' THEN (SELECT at FROM due) ELSE statement_timestamp() END,
        CASE WHEN %(inline)s THEN statement_timestamp() + make_interval(secs => %(lease)s) END,
        %(lease)s, %(token)s, %(owner)s,
        CASE WHEN %(kind)s = 'step' THEN statement_timestamp() WHEN %(hinted)s THEN (SELECT at FROM due) END, 0
    WHERE EXISTS (SELECT 1 FROM taken) RETURNING id
)
SELECT (SELECT count(*) FROM run), (SELECT count(*) FROM taken), (SELECT id FROM item)"""


@dataclass(frozen=True, slots=True)
class Fresh:
    """What the worker read of a run that may be fresh, with its advance item."""

    run_id: uuid.UUID
    workflow_id: str
    workflow_name: str
    input_json: str
    generation: int


def advance_fresh(using: str, fresh: Fresh, queue: str) -> Claim | General | None:
    """Take a fresh run's first advance in one statement; its first step if this worker runs it inline.

    None when another worker took this advance already; :data:`GENERAL` when the general
    way must (the statement changed nothing then).
    """
    connection = connections[using]
    if not settings.FAST_PATH or connection.vendor != "postgresql" or connection.in_atomic_block:
        return GENERAL
    prepared = _prepare(using, fresh, queue)
    if prepared is None:
        return GENERAL
    interpreter, params = prepared
    crash_point("advance.before_commit")
    with connection.cursor() as cursor:
        cursor.execute(_FIRST, params)
        locked, taken, item_id = cursor.fetchone()
    return _after(fresh, interpreter, params, locked, taken, item_id)


def advance_many(using: str, item_ids: list[int]) -> list[int]:
    """The first advances of several fresh runs in one transaction (one commit for all); returns the items left.

    What is left (an item that is not a fresh run's advance, a run that does not begin with
    a step or a sleep, a run a caller holds) goes the general way, one by one. Their first
    steps are not run inline here but sent to the queue, so no run waits for another's.
    """
    connection = connections[using]
    if not settings.FAST_PATH or connection.vendor != "postgresql" or connection.in_atomic_block:
        return item_ids
    rows = WorkItem.objects.using(using).filter(pk__in=item_ids).values("pk", "kind", "run__status", *_RUN_FIELDS)
    found = {row["pk"]: row for row in rows}
    left: list[int] = []
    batch: list[tuple[int, Fresh, Interpreter, dict[str, Any]]] = []
    for item_id in item_ids:
        row = found.get(item_id)
        if row is None:
            continue  # done already
        if row["kind"] != WorkItem.Kind.ADVANCE or row["run__status"] != WorkflowRun.Status.PENDING:
            left.append(item_id)
            continue
        fresh = Fresh(*(row[field] for field in _RUN_FIELDS))
        try:
            prepared = _prepare(using, fresh, None)
        except Exception:  # the general way ends such a run visibly
            prepared = None
        if prepared is None:
            left.append(item_id)
        else:
            batch.append((item_id, fresh, *prepared))
    if not batch:
        return left
    outcomes: list[tuple[Any, Any, Any]] = []
    try:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            for _, _, _, params in batch:
                cursor.execute(_FIRST, params)
                outcomes.append(cursor.fetchone())
            crash_point("advance.before_commit")
    except poison.TRANSIENT:
        _close(batch)
        raise  # the connection or the server: the items stay, and are sent again
    except Exception:
        _close(batch)
        return item_ids  # one by one, the general way, where a failing run is handled alone
    for (item_id, fresh, interpreter, params), (locked, taken, new_item) in zip(batch, outcomes, strict=True):
        if not locked:
            left.append(item_id)
        _after(fresh, interpreter, params, locked, taken, new_item)
    return left


def _close(batch: list[tuple[int, Fresh, Interpreter, dict[str, Any]]]) -> None:
    for _, _, interpreter, _ in batch:
        interpreter.close()


def _prepare(using: str, fresh: Fresh, queue: str | None) -> tuple[Interpreter, dict[str, Any]] | None:
    """Run the generator to its first request; the statement's parameters, or None for the general way."""
    try:
        interpreter = workflow_interpreter(fresh.workflow_name, fresh.input_json)
    except WorkflowNotRegistered:
        return None  # the general way blocks the run, visibly
    history = History(using, fresh.run_id, 0)
    run_info.bind(interpreter, using, fresh.run_id, history.time_at)  # what the code reads of its run
    decision = engine.decide(interpreter, history, inbox=Inbox(using, fresh.run_id))
    # A time the code read (durable.now()) before its first request is recorded with that
    # request's entry, as the step fast path does; one read anywhere else goes the general way.
    params = None if set(interpreter.reads.unwritten) - {0} else _params(decision, queue)
    if params is None:
        if decision.end is None and all(isinstance(command, engine.Open) for command in decision.commands):
            _keep(fresh, interpreter)
        else:  # it went past its first yield (a state, a patch marker, the end): the general way replays
            interpreter.close()
        return None
    params.update(
        run=fresh.run_id,
        generation=fresh.generation,
        owner=lease_owner() if params["inline"] else "",
        scheduled_at=interpreter.reads.unwritten.get(0),
    )
    return interpreter, params


def _after(
    fresh: Fresh, interpreter: Interpreter, params: dict[str, Any], locked: int, taken: int, item_id: int | None
) -> Claim | General | None:
    """After the statement committed: keep the generator, send what must be sent, hand back an inline step."""
    if not locked:
        _keep(fresh, interpreter)
        return GENERAL  # held by a caller, cancelled, or moved: the general way knows what to do
    if not taken:
        interpreter.close()
        return None  # another worker took this run's advance
    interpreter.reads.unwritten.pop(0, None)  # the statement recorded it
    generator_cache.put(fresh.run_id, fresh.generation, 1, interpreter)
    request = params["request"]
    assert item_id is not None  # the statement inserted it
    if isinstance(request, Sleep):
        if params["hint"] is not None:
            outbox.publish(item_id, "", countdown=params["hint"])
        return None
    if not params["inline"]:
        outbox.publish(item_id, params["queue"])
        return None
    return Claim(
        item_id=item_id,
        token=1,
        run_id=fresh.run_id,
        workflow_id=fresh.workflow_id,
        generation=fresh.generation,
        seq=0,
        step=request.name,
        args_json=request.args_json,
        attempt=1,
        queue=params["queue"],
        lease_seconds=params["lease"],
    )


def _keep(fresh: Fresh, interpreter: Interpreter) -> None:
    """Leave the generator, still at its first yield, to the general way: it decides again under the lock.

    Only a generator that went no further than its first yield (the decision only opens
    requests) may be kept: one fed a state or a patch marker, or ended, would skip them.

    A generator stopped at its first yield is what a replay of an empty history gives, so
    the general way takes it from the cache instead of running the workflow's code again.
    """
    generator_cache.put(fresh.run_id, fresh.generation, 0, interpreter)


def _params(decision: engine.Decision, queue: str | None) -> dict[str, Any] | None:
    """The statement's parameters if the decision is only to open a step or a sleep at position 0."""
    if decision.end is not None or len(decision.commands) != 1:
        return None
    command = decision.commands[0]
    if not isinstance(command, engine.Open) or command.group is not None or command.seq != 0:
        return None
    request = command.request
    if isinstance(request, StepCall):
        try:
            step = lookup_step(request.name)
        except WorkflowNotRegistered:
            return None
        step_queue = step.queue or ""
        inline = step_queue == queue
        return {
            "request": request, "kind": Kind.STEP.value, "item_kind": WorkItem.Kind.STEP, "name": request.name,
            "args": request.args_json, "status": WorkflowRun.Status.RUNNING, "inline": inline,
            "attempts": int(inline), "token": int(inline), "queue": step_queue, "lease": step.lease_seconds,
            "until": None, "seconds": 0.0, "hinted": False, "hint": None,
        }  # fmt: skip
    if isinstance(request, Sleep):
        spec = codec.decode(request.args_json)
        if "seconds" in spec:
            until, seconds = None, float(spec["seconds"])
        else:  # the hint may use this process's clock; the timer itself waits for the database's
            until = datetime.fromisoformat(spec["until"])
            seconds = max(0.0, (until - _now()).total_seconds())
        hint = outbox.countdown_hint(seconds)
        return {
            "request": request, "kind": Kind.SLEEP.value, "item_kind": WorkItem.Kind.TIMER, "name": request.name,
            "args": request.args_json, "status": WorkflowRun.Status.WAITING, "inline": False, "attempts": 0,
            "token": 0, "queue": "", "lease": 60.0, "until": until, "seconds": seconds if until is None else 0.0,
            "hinted": hint is not None, "hint": hint,
        }  # fmt: skip
    return None


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()
