"""Advance a run: feed the workflow what happened, then persist what it decided.

Runs inside the caller's transaction, with the run's row locked
(:func:`~durable_django.store.locking.lock_run`), so one run advances in one place at a
time, taking the locks in the order :mod:`.locking` documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..core import codec, engine
from ..core.interpreter import ErrorInfo, Interpreter, error_info
from ..core.registry import resolve_workflow, workflow_interpreter
from ..core.registry import step as lookup_step
from ..core.requests import (
    AllOf,
    AnyOf,
    ChildCall,
    Kind,
    Leaf,
    Patched,
    Reply,
    SetState,
    Sleep,
    StepCall,
    WaitSignal,
    WaitUpdate,
)
from ..exceptions import NonDeterminismError, WorkflowNotRegistered
from ..models import HistoryEntry, WorkflowRun, WorkItem
from . import generator_cache, lifecycle, outbox, run_info, updates
from .clock import Now
from .fastpath import Handoff
from .faults import crash_point
from .history import History
from .inbox import Inbox
from .leases import Claim, db_now_plus, lease_owner

__all__ = ["advance"]

Status = WorkflowRun.Status
Entry = HistoryEntry.Status
#: Signals or child results taken in one advance at most; more continue in a new work item.
MAX_ROUNDS = 100


def advance(
    using: str,
    run: WorkflowRun,
    queue: str | None,
    known: tuple[int, engine.Recorded] | None = None,
    handoff: Handoff | None = None,
) -> Claim | None:
    """Advance the locked ``run``; returns a step for this worker to run inline, if any.

    ``queue`` is the queue this worker serves (None outside a worker: nothing inline).
    ``known`` is an entry the caller has just written, to spare a query. ``handoff`` is a
    generator already fed ``known`` and what it decided next (from the fast path): the
    caller has checked the run did not move since.
    """
    if run.status not in WorkflowRun.LIVE:
        if handoff is not None:
            handoff.interpreter.close()
        return None
    if handoff is not None:
        history = History(using, run.pk, run.next_seq, start=handoff.interpreter.position)
        if known is not None:
            history.add(*known)
        return _Advance(using, run, handoff.interpreter, history, queue).drive(first=handoff.decision)
    interpreter = generator_cache.take(run.pk, run.generation, run.next_seq)
    if interpreter is None:
        try:  # the input is loaded now if the lock did not fetch it
            interpreter = workflow_interpreter(run.workflow_name, run.input_json)
        except WorkflowNotRegistered as error:
            lifecycle.finish(using, run, Status.BLOCKED, error_json=lifecycle.missing_code(error_info(error)).as_json())
            return None
    history = History(using, run.pk, run.next_seq, start=interpreter.position)
    if known is not None:
        history.add(*known)
    return _Advance(using, run, interpreter, history, queue).drive()


class _Advance:
    """One advance: decide, apply the commands, take buffered signals and child results, repeat."""

    def __init__(
        self, using: str, run: WorkflowRun, interpreter: Interpreter, history: History, queue: str | None
    ) -> None:
        self.using = using
        self.run = run
        self.interpreter = interpreter
        self.history = history
        self.queue = queue
        run_info.bind(interpreter, using, run.pk, history.time_at)  # what the code reads of its run, this advance
        self.inline: Claim | None = None
        self.state_json: str | None = None
        self.running = False
        self.inbox = Inbox(using, run.pk)
        #: ``any_of`` groups opened in this advance.
        self.racing: set[int | None] = set()

    def drive(self, first: engine.Decision | None = None) -> Claim | None:
        cancel, deadline = self.run.cancel_requested, self.run.deadline_exceeded
        running = self._running_steps() if cancel else frozenset()
        for _ in range(MAX_ROUNDS):
            if first is not None:
                decision, first = first, None
            else:
                decision = engine.decide(
                    self.interpreter, self.history, cancel=cancel, running=running, inbox=self.inbox, deadline=deadline
                )
            if decision.cancel_delivered:
                cancel = False
            unknown = _unknown_code(decision.commands)
            if unknown is not None:
                self._end(Status.BLOCKED, error_json=lifecycle.missing_code(unknown).as_json())
                return None
            for command in decision.commands:
                self._apply(command)
            if decision.end is not None:
                self._finish(decision.end)
                return None
            if not self._collect(decision.waiting, race=decision.race):
                break
        else:  # more signals are waiting than one transaction should take
            self._wake()
        self._save(decision.waiting, cancel)
        crash_point("advance.before_commit")
        key = (self.run.pk, self.run.generation, self.history.next_seq)
        interpreter = self.interpreter
        transaction.on_commit(lambda: generator_cache.put(*key, interpreter), using=self.using)
        return self.inline

    def _running_steps(self) -> frozenset[int]:
        """Positions of this run's steps whose attempt runs right now: a cancel waits for them to report.

        Their external effect may already be under way. Once an attempt reports, its outcome is
        recorded and ``Cancelled`` is raised at its yield; no further attempt starts. Steps not
        started yet (queued or waiting to retry), sleeps, waits and children are cancelled at
        once. The step items are locked (run, then items: the lock order), so a worker cannot
        claim one between this look and the cancel.
        """
        items = WorkItem.objects.using(self.using).of(self.run.pk).of_kind(WorkItem.Kind.STEP)
        rows = items.select_for_update().annotate(now=Now()).values_list("seq", "lease_expires_at", "now")
        return frozenset(seq for seq, expires, now in rows if seq is not None and expires is not None and expires > now)

    # Commands.
    def _apply(self, command: engine.Command) -> None:
        if isinstance(command, engine.Open):
            self._open(command.seq, command.request, command.group)
        elif isinstance(command, engine.Note):
            self._note(command)
        else:
            self._settle(command.seq, command.outcome)

    def _entry(self, seq: int, request: Leaf | AllOf | AnyOf | Patched | SetState | Reply, **fields: Any) -> None:
        fields.update(run_info.written_at(self.interpreter, seq))
        HistoryEntry.objects.using(self.using).create(
            run_id=self.run.pk, seq=seq, kind=request.kind, name=request.name, args_json=request.args_json, **fields
        )
        self.history.add(seq, engine.Recorded(request.kind, request.name, request.args_json, None))

    def _open(self, seq: int, request: Leaf | AllOf | AnyOf, group: int | None) -> None:
        if isinstance(request, AllOf | AnyOf):
            if isinstance(request, AnyOf):
                self.racing.add(seq)
            self._entry(seq, request)
        elif isinstance(request, StepCall):
            self._open_step(seq, request, group)
        elif isinstance(request, Sleep):
            spec = codec.decode(request.args_json)
            fire_at: Any
            if "seconds" in spec:
                seconds, fire_at = spec["seconds"], db_now_plus(spec["seconds"])
            else:  # the hint may use this process's clock; the timer itself waits for the database's
                fire_at = datetime.fromisoformat(spec["until"])
                seconds = max(0.0, (fire_at - timezone.now()).total_seconds())
            self._entry(seq, request, group_seq=group, fire_at=fire_at)
            self._timer(seq, fire_at, seconds)
        elif isinstance(request, WaitSignal | WaitUpdate):
            self._open_wait(seq, request, group)
        elif isinstance(request, ChildCall):
            self._open_child(seq, request, group)

    def _open_wait(self, seq: int, request: WaitSignal | WaitUpdate, group: int | None) -> None:
        # A wait in a race takes its signal in _collect, where only the first to finish takes one.
        taken = None if group in self.racing else self._take(request.kind, request.name, seq)
        if taken is not None:  # already in the inbox: the wait is over as it begins
            self._entry(seq, request, group_seq=group, **_columns(engine.Succeeded(taken)))
            self.history.add(seq, _with_outcome(self.history[seq], engine.Succeeded(taken)))
            return
        timeout = codec.decode(request.args_json)["timeout"]
        fire_at = None if timeout is None else db_now_plus(timeout)
        self._entry(seq, request, group_seq=group, fire_at=fire_at)
        if fire_at is not None:
            self._timer(seq, fire_at, timeout)

    def _take(self, kind: str, name: str, seq: int) -> str | None:
        return updates.take(self.using, self.run.pk, name, seq) if kind == Kind.UPDATE else self.inbox.take(name, seq)

    def _open_step(self, seq: int, request: StepCall, group: int | None) -> None:
        definition = lookup_step(request.name)
        step_queue = definition.queue or ""
        inline = self.inline is None and self.queue == step_queue
        lease = definition.lease_seconds
        self.running = True
        self._entry(seq, request, group_seq=group, attempts=int(inline), started_at=Now() if inline else None)
        item = WorkItem.objects.using(self.using).create(
            run_id=self.run.pk,
            kind=WorkItem.Kind.STEP,
            seq=seq,
            queue=step_queue,
            lease_seconds=lease,
            token=int(inline),
            lease_expires_at=db_now_plus(lease) if inline else None,
            owner=lease_owner() if inline else "",
            dispatched_at=Now(),
        )
        if not inline:
            outbox.after_commit(item.pk, step_queue, using=self.using)
            return
        self.inline = Claim(
            item_id=item.pk,
            token=1,
            run_id=self.run.pk,
            workflow_id=self.run.workflow_id,
            generation=self.run.generation,
            seq=seq,
            step=request.name,
            args_json=request.args_json,
            attempt=1,
            queue=step_queue,
            lease_seconds=lease,
        )

    def _timer(self, seq: int, fire_at: Any, seconds: float | None) -> None:
        hint = None if seconds is None else outbox.countdown_hint(seconds)
        item = WorkItem.objects.using(self.using).create(
            run_id=self.run.pk,
            kind=WorkItem.Kind.TIMER,
            seq=seq,
            available_at=fire_at,
            dispatched_at=None if hint is None else fire_at,
        )
        if hint is not None:
            outbox.after_commit(item.pk, "", using=self.using, countdown=hint)

    def _open_child(self, seq: int, request: ChildCall, group: int | None) -> None:
        self.running = True
        child = lifecycle.create_child(
            self.using, self.run, seq, request.name, request.args_json, request.workflow_id, request.timeout_seconds
        )
        if isinstance(child, ErrorInfo):  # the chosen id is taken: the parent gets the refusal at its yield
            self._entry(seq, request, group_seq=group, **_columns(engine.Failed(child)))
            self.history.add(seq, _with_outcome(self.history[seq], engine.Failed(child)))
            return
        self._entry(seq, request, group_seq=group, child=child)
        outbox.wake(self.using, child.pk)

    def _note(self, command: engine.Note) -> None:
        self._entry(command.seq, command.request, group_seq=command.group, **_columns(command.outcome))
        self.history.add(command.seq, _with_outcome(self.history[command.seq], command.outcome))
        if isinstance(command.request, SetState):
            self.state_json = command.request.args_json
        elif isinstance(command.request, Reply):
            updates.answer(self.using, self.run.pk, command.request)

    def _settle(self, seq: int, outcome: engine.Outcome) -> None:
        entries = HistoryEntry.objects.using(self.using).at(self.run.pk, seq)
        if outcome is engine.CANCELLED:  # its work first: items before entries, the lock order
            WorkItem.objects.using(self.using).of(self.run.pk).filter(seq=seq).delete()
            if self.inline is not None and self.inline.seq == seq:
                self.inline = None  # opened in this advance and already lost: it never runs
        entries.update(finished_at=Now(), **_columns(outcome))
        self.history.add(seq, _with_outcome(self.history[seq], outcome))
        if outcome is engine.CANCELLED:
            child_id = entries.values_list("child_id", flat=True).first()
            if child_id is not None:
                lifecycle.request_cancel(self.using, child_id)

    # Outcomes that wait in the database: buffered signals and finished children.
    def _collect(self, waiting: tuple[int, ...], *, race: bool) -> bool:
        """Settle what the run waits on from what is already here; True if anything was.

        In a race (an ``any_of``) the first outcome decides: once one leaf has one, the
        others are left alone, so a losing wait takes no signal.
        """
        found = False
        for seq in waiting:
            entry = self.history[seq]
            if entry.outcome is not None:  # settled while this decision was applied
                found = True
            elif entry.kind in {Kind.SIGNAL, Kind.UPDATE}:
                found = self._take_signal(seq, entry) or found
            elif entry.kind == Kind.CHILD:
                found = self._take_child_result(seq, entry) or found
            if race and found:
                break
        return found

    def _take_signal(self, seq: int, entry: engine.Recorded) -> bool:
        payload_json = self._take(entry.kind, entry.name, seq)
        if payload_json is None:
            return False
        if codec.decode(entry.args_json)["timeout"] is not None:
            WorkItem.objects.using(self.using).of(self.run.pk).filter(seq=seq).delete()  # the timeout's timer
        self._settle(seq, engine.Succeeded(payload_json))
        return True

    def _take_child_result(self, seq: int, entry: engine.Recorded) -> bool:
        # By the entry's link, not by position: an earlier generation's child sat at this position too.
        child = (
            WorkflowRun.objects.using(self.using)
            .finished()
            .filter(pk__in=HistoryEntry.objects.using(self.using).at(self.run.pk, seq).values("child_id"))
            .values_list("status", "result_json", "error_json")
            .first()
        )
        if child is None:
            return False
        status, result_json, error_json = child
        if status == Status.COMPLETED:
            self._settle(seq, engine.Succeeded(result_json or "null"))
        else:
            error = ErrorInfo.from_json(error_json) if error_json else ErrorInfo(f"durable_django.{status}", status)
            self._settle(seq, engine.Failed(error))
        return True

    # Saving and ending.
    def _save(self, waiting: tuple[int, ...], cancel: bool) -> None:
        self.inbox.flush()
        self.interpreter.reads.unwritten.clear()  # read where no entry follows: nothing replays there
        running = self.running or any(self.history[seq].kind in {Kind.STEP, Kind.CHILD} for seq in waiting)
        fields: dict[str, Any] = {
            "next_seq": self.history.next_seq,
            "status": Status.RUNNING if running or not waiting else Status.WAITING,
            "cancel_requested": cancel,
            "updated_at": Now(),
        }
        if self.state_json is not None:
            fields["state_json"] = self.state_json
        WorkflowRun.objects.using(self.using).filter(pk=self.run.pk).update(**fields)

    def _finish(self, end: engine.End) -> None:
        self.inbox.flush()
        if isinstance(end, engine.Complete):
            return self._end(Status.COMPLETED, result_json=end.result_json)
        if isinstance(end, engine.Fail):
            return self._end(Status.CANCELLED if end.cancelled else Status.FAILED, error_json=end.error.as_json())
        if isinstance(end, engine.Block):
            return self._end(Status.BLOCKED, error_json=error_info(NonDeterminismError(end.message)).as_json())
        self.interpreter.close()
        return lifecycle.continue_as_new(self.using, self.run, end.args_json, self.state_json)

    def _end(self, status: str, **fields: Any) -> None:
        self.inbox.flush()
        self.interpreter.close()
        if self.state_json is not None:
            fields["state_json"] = self.state_json
        lifecycle.finish(self.using, self.run, status, next_seq=self.history.next_seq, **fields)

    def _wake(self) -> None:
        outbox.wake(self.using, self.run.pk)


def _unknown_code(commands: tuple[engine.Command, ...]) -> ErrorInfo | None:
    """Check every step and child workflow exists before anything of this decision is written."""
    for command in commands:
        if not isinstance(command, engine.Open):
            continue
        try:
            if isinstance(command.request, StepCall):
                lookup_step(command.request.name)
            elif isinstance(command.request, ChildCall):
                resolve_workflow(command.request.name)
        except WorkflowNotRegistered as error:
            return error_info(error)
    return None


def _columns(outcome: engine.Outcome) -> dict[str, Any]:
    if isinstance(outcome, engine.Succeeded):
        return {"status": Entry.COMPLETED, "result_json": outcome.value_json}
    if isinstance(outcome, engine.Failed):
        return {"status": Entry.FAILED, "error_json": outcome.error.as_json()}
    if outcome is engine.TIMED_OUT:
        return {"status": Entry.COMPLETED, "result_json": None}
    return {"status": Entry.CANCELLED}


def _with_outcome(entry: engine.Recorded, outcome: engine.Outcome) -> engine.Recorded:
    return engine.Recorded(entry.kind, entry.name, entry.args_json, outcome)
