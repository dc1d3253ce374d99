"""Firing schedules: each due tick starts one run, however many workers sweep.

A sweeper claims due rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` (on SQLite, whose
writers take turns, one sweeper works at a time) and, in the same transaction, starts
each due tick's run and moves the row to its next tick. Another sweeper either skips the
locked row or, once that commits, finds it no longer due: a tick fires in one transaction
only. Its run is named ``<name>@<tick in UTC>``, and a start with a taken id returns the
existing run, so even a tick fired twice (a row restored from a backup, say) starts once.

What is due is decided by the database's clock, never a worker's. The testing toolkit
lets time pass by moving ``fire_at`` earlier; the gap between it and the tick (plus its
jitter) is carried forward as the schedule's own head start, so the following ticks keep
their spacing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from ..core import cadence
from ..core.cadence import Cadence, jitter_for
from ..exceptions import InvalidSchedule
from ..models import Schedule, WorkflowRun
from . import lifecycle, observe, outbox
from .clock import Now, database_now
from .leases import database

__all__ = ["pause", "reschedule", "resume", "sweep", "tick_workflow_id", "trigger"]

logger = logging.getLogger("durable_django")
#: Schedules one transaction fires at most, and transactions one sweep makes at most.
BATCH = 100
_ROUNDS = 10


def tick_workflow_id(name: str, tick: datetime) -> str:
    """The run of schedule ``name`` for ``tick``: ``nightly-sync@2026-03-29T00:00:00Z``."""
    return f"{name}@{tick.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def cadence_of(row: Schedule) -> Cadence:
    return Cadence.of(cron=row.cron or None, every=row.every, timezone=row.timezone if row.cron else None)


def sweep(using: str | None = None) -> int:
    """Fire every due schedule; returns how many runs were started."""
    using = using or database()
    # Most sweeps find nothing due: one indexed read, without the BEGIN and COMMIT of a claim.
    if not Schedule.objects.using(using).due().exists():
        return 0
    started = 0
    for _ in range(_ROUNDS):
        with transaction.atomic(using=using):
            due = Schedule.objects.using(using).due().select_for_update(skip_locked=True).order_by("fire_at")
            rows = list(due[:BATCH])
            now = database_now(using) if rows else None
            for row in rows:
                assert now is not None
                started += _fire(using, row, now)
        if len(rows) < BATCH:
            break
    if started:
        logger.info("durable_django: schedules started %d run(s)", started)
    return started


def _head_start(row: Schedule) -> timedelta:
    """How much earlier than its tick (plus jitter) the row was made due: zero but in tests."""
    if row.next_tick_at is None or row.fire_at is None:
        return timedelta(0)
    return row.next_tick_at + jitter_for(row.name, row.next_tick_at, row.jitter) - row.fire_at


def _fire(using: str, row: Schedule, db_now: datetime) -> int:
    try:
        timing = cadence_of(row)
    except InvalidSchedule as error:  # a row changed behind the form's back: stop, visibly
        Schedule.objects.using(using).filter(pk=row.pk).update(paused=True, note=f"paused: {error}", updated_at=Now())
        logger.warning("durable_django: schedule %r paused: %s", row.name, error)
        return 0
    head_start = _head_start(row)
    now = db_now + head_start
    if row.next_tick_at is None or row.fire_at is None:  # a row written without its timing: count it now
        first = timing.after(now)
        plan = cadence.Due((), None, first, first + jitter_for(row.name, first, row.jitter))
    else:
        plan = cadence.due(timing, row.name, row.next_tick_at, now, catch_up=row.catch_up, jitter=row.jitter)
    notes = []
    if plan.dropped_since is not None:
        notes.append(
            f"ticks from {plan.dropped_since:%Y-%m-%d %H:%M:%S} UTC on were missed and not fired "
            f"(catch_up={row.catch_up} fires the latest only)"
        )
    fields: dict[str, Any] = {}
    started = 0
    for tick in plan.fire:
        run_id, note = _start(using, row, tick_workflow_id(row.name, tick))
        fields["last_tick_at"] = tick
        if note:
            notes.append(note)
        if run_id is not None:
            fields["last_run_id"] = row.last_run_id = run_id
            started += 1
    if plan.fire or notes:
        fields["note"] = "; ".join(notes)
    Schedule.objects.using(using).filter(pk=row.pk).update(
        next_tick_at=plan.next_tick, fire_at=plan.next_fire_at - head_start, updated_at=Now(), **fields
    )
    return started


def _start(using: str, row: Schedule, workflow_id: str) -> tuple[uuid.UUID | None, str]:
    """Start the run ``workflow_id`` as the overlap policy allows: its id, or None, and what happened."""
    previous = None
    if row.last_run_id is not None:
        live = WorkflowRun.objects.using(using).live().filter(pk=row.last_run_id)
        previous = live.values_list("workflow_id", "status").first()
    note = ""
    if previous is not None and row.overlap == Schedule.Overlap.SKIP:
        return None, f"skipped {workflow_id}: the previous run {previous[0]!r} is still {previous[1]}"
    if previous is not None and row.overlap == Schedule.Overlap.CANCEL_PREVIOUS:
        assert row.last_run_id is not None
        lifecycle.request_cancel(using, row.last_run_id)
        note = f"asked the previous run {previous[0]!r} to cancel"
    runs = WorkflowRun.objects.using(using)
    try:
        with transaction.atomic(using=using):  # a savepoint: the unique workflow_id may refuse the row
            run = runs.create(workflow_id=workflow_id, workflow_name=row.workflow_name, input_json=row.args_json)
    except IntegrityError:
        existing = runs.with_id(workflow_id).values_list("pk", "workflow_name").first()
        if existing is None:
            raise
        if existing[1] != row.workflow_name:
            return None, f"nothing started: {workflow_id!r} belongs to a run of {existing[1]!r}"
        # Starting it again changes nothing. Never seen in normal operation (a tick fires in one
        # transaction): logged, since it means a tick was fired twice.
        logger.warning(
            "durable_django: the run %r of schedule %r existed already; not started again", workflow_id, row.name
        )
        return existing[0], note
    outbox.wake(using, run.pk)
    observe.run_started(using, run.pk, workflow_id, row.workflow_name)
    return run.pk, note


def _locked(using: str, schedule: Schedule) -> Schedule:
    return Schedule.objects.using(using).select_for_update().get(pk=schedule.pk)


def reschedule(schedule: Schedule) -> None:
    """Count the ticks again from now (after an edit, a resume, a new declaration): nothing missed fires."""
    using = database()
    with transaction.atomic(using=using):
        row = _locked(using, schedule)
        first = cadence_of(row).after(database_now(using))
        fire_at = first + jitter_for(row.name, first, row.jitter)
        Schedule.objects.using(using).filter(pk=row.pk).update(next_tick_at=first, fire_at=fire_at, updated_at=Now())
    schedule.next_tick_at, schedule.fire_at = first, fire_at


def pause(schedule: Schedule) -> None:
    using = database()
    Schedule.objects.using(using).filter(pk=schedule.pk).update(paused=True, updated_at=Now())
    schedule.paused = True


def resume(schedule: Schedule) -> None:
    """Fire again from the first tick after now; the ticks of the pause are not caught up."""
    using = database()
    with transaction.atomic(using=using):
        Schedule.objects.using(using).filter(pk=schedule.pk).update(paused=False, updated_at=Now())
        reschedule(schedule)
    schedule.paused = False


def trigger(schedule: Schedule) -> WorkflowRun | None:
    """Start the schedule's workflow now, as ``<name>@manual-<now>``, under its overlap policy.

    The regular ticks are not moved. Returns the run, or None when the policy skipped it
    (``schedule.note`` says why).
    """
    using = database()
    with transaction.atomic(using=using):
        row = _locked(using, schedule)
        now = database_now(using)
        run_id, note = _start(using, row, f"{row.name}@manual-{now:%Y-%m-%dT%H:%M:%S.%fZ}")
        fields: dict[str, Any] = {"note": note, "updated_at": Now()}
        if run_id is not None:
            fields["last_run_id"] = run_id
        Schedule.objects.using(using).filter(pk=row.pk).update(**fields)
    schedule.note = note
    if run_id is None:
        return None
    schedule.last_run_id = run_id
    return WorkflowRun.objects.using(using).get(pk=run_id)
