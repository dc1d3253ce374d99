"""The replay interpreter: a workflow generator plus its history in, one decision out.

Pure: no ORM, no Celery, no clock. The store feeds it recorded outcomes; the same
:func:`decide` serves a fresh replay from the start and a cached live generator that is
only fed what is new, so both paths give the same answer.

History is a map from sequence numbers to :class:`Recorded` entries. A yield takes one
position, or ``1 + n`` for a group of ``n`` requests (the group's entry, then its
leaves). Outcomes that several events race for (which leaf of ``any_of`` won, when a
cancellation landed) are decided once, emitted as commands for the store to persist,
and read back from history on every later replay.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from ..exceptions import Cancelled, ChildFailed, DeadlineExceeded, StepFailed
from . import codec
from .decisions import (
    CANCELLED,
    TIMED_OUT,
    Block,
    Command,
    Complete,
    Decision,
    End,
    Fail,
    Failed,
    Note,
    Open,
    Outcome,
    Recorded,
    Restart,
    Settle,
    Succeeded,
    _Cancelled,
    _TimedOut,
)
from .divergence import divergence, ended_early, mismatch, same
from .interpreter import Event, Interpreter, Raised, Returned
from .requests import (
    AllOf,
    AnyOf,
    ChildCall,
    ContinueAsNew,
    Group,
    Leaf,
    Patched,
    Reply,
    SetState,
    UpdateRequest,
    WaitSignal,
    WaitUpdate,
)

__all__ = [
    "CANCELLED",
    "NO_SIGNALS",
    "TIMED_OUT",
    "Block",
    "Command",
    "Complete",
    "Decision",
    "End",
    "Fail",
    "Failed",
    "Note",
    "Open",
    "Outcome",
    "Recorded",
    "Restart",
    "Settle",
    "Succeeded",
    "decide",
]

#: The message of the Cancelled that run.cancel() raises in the workflow.
_CANCEL_MESSAGE = "the run was cancelled (run.cancel())"
#: ...and of the DeadlineExceeded its deadline raises.
_DEADLINE_MESSAGE = "the run's deadline passed (timeout=)"


def _cancel_error(deadline: bool) -> Cancelled:
    return DeadlineExceeded(_DEADLINE_MESSAGE) if deadline else Cancelled(_CANCEL_MESSAGE)


#: What waits in a run's inbox: ``(kind, name)`` of its signals and updates (``Kind.SIGNAL`` or ``Kind.UPDATE``).
Inbox = Container[tuple[str, str]]

#: An inbox with nothing in it, for replays that must not take signals or updates.
NO_SIGNALS: Inbox = frozenset()


def decide(
    interpreter: Interpreter,
    history: Mapping[int, Recorded],
    *,
    cancel: bool = False,
    running: Container[int] = frozenset(),
    inbox: Inbox = NO_SIGNALS,
    deadline: bool = False,
) -> Decision:
    """Feed recorded outcomes into ``interpreter`` until the workflow needs something new.

    ``history`` must hold every entry from the interpreter's position on.

    ``cancel``: a cancel is pending. :class:`~durable_django.Cancelled` is raised at the first
    yield that has no outcome yet, after that yield's pending work is cancelled; work in
    ``running`` (the positions of steps whose attempt runs now) is left to report first, and
    the cancel waits for it. A step that reports while the cancel is pending is recorded with
    a cancelled outcome, so ``Cancelled`` is raised at that step's yield.

    ``inbox``: the ``(kind, name)`` of the signals and updates waiting in the run's inbox. An
    ``any_of`` whose signal or update wait can be satisfied at once is decided as it opens:
    that wait wins, and the other requests are recorded as cancelled without starting (no
    step runs, no other wait takes a signal or an update).

    ``deadline``: the run's cancel (pending or recorded) came from its deadline, so it is
    raised as :class:`~durable_django.DeadlineExceeded`.
    """
    commands: list[Command] = []
    delivered = False

    def decision(end: End | None = None, waiting: tuple[int, ...] = (), race: bool = False) -> Decision:
        return Decision(tuple(commands), end, waiting, delivered, race)

    event: Event = interpreter.current
    while True:
        seq = interpreter.position
        recorded = history.get(seq)
        if isinstance(event, Returned | Raised | ContinueAsNew):
            if recorded is not None:  # the code stops where history goes on
                return decision(Block(seq, ended_early(interpreter.name, seq, recorded)))
            if isinstance(event, Returned):
                return decision(Complete(event.value_json))
            if isinstance(event, Raised):
                return decision(Fail(event.error, cancelled=event.cancelled))
            return decision(Restart(event.args_json))
        if isinstance(event, Patched):
            marked = recorded is not None and (recorded.kind, recorded.name) == (event.kind, event.name)
            if event.deprecated:  # the old branch is gone: read past a marker, never write one
                event = interpreter.send(None, consumed=int(marked))
            elif recorded is None:  # running new code: take the new branch and remember that
                commands.append(Note(seq, event, Succeeded("true")))
                event = interpreter.send(True, consumed=1)
            elif marked:
                event = interpreter.send(True, consumed=1)
            else:  # history was written by code without this patch
                event = interpreter.send(False, consumed=0)
            continue
        if isinstance(event, SetState | Reply):
            if recorded is None:
                commands.append(Note(seq, event, Succeeded("null")))
            elif not same(recorded, event):
                return decision(Block(seq, divergence(interpreter.name, seq, recorded, event)))
            event = interpreter.send(None, consumed=1)
            continue

        leaves: tuple[Leaf, ...] = event.requests if isinstance(event, AllOf | AnyOf) else (event,)
        first = seq + 1 if isinstance(event, AllOf | AnyOf) else seq
        group = seq if isinstance(event, AllOf | AnyOf) else None
        width = first - seq + len(leaves)
        if recorded is None:
            if cancel and not delivered:  # cancelled before it started: nothing runs
                if group is not None:
                    commands.append(Note(seq, event, CANCELLED))
                commands.extend(Note(first + i, leaf, CANCELLED, group) for i, leaf in enumerate(leaves))
                delivered = True
                event = interpreter.throw(_cancel_error(deadline), consumed=width)
                continue
            winner = _waiting_message(event, inbox) if isinstance(event, AnyOf) else None
            if winner is not None:  # decided as it opens: the others never start
                commands.append(Note(seq, event, Succeeded(str(winner))))
                for index, leaf in enumerate(leaves):
                    if index == winner:
                        commands.append(Open(first + index, leaf, group))
                    else:
                        commands.append(Note(first + index, leaf, CANCELLED, group))
                return decision(waiting=(first + winner,))
            if group is not None:
                commands.append(Open(seq, event))
            commands.extend(Open(first + i, leaf, group) for i, leaf in enumerate(leaves))
            return decision(waiting=tuple(range(first, first + len(leaves))), race=isinstance(event, AnyOf))

        entries = [history.get(first + i) for i in range(len(leaves))]
        diverged = mismatch(interpreter.name, seq, first, event, recorded, leaves, entries)
        if diverged is not None:
            return decision(diverged)
        if isinstance(event, AnyOf) and recorded.outcome is None and not (cancel and not delivered):
            winner = _waiting_message_first(event, entries, inbox)
            if winner is not None:  # its signal came before the run looked: it finished first
                commands.extend(
                    Settle(first + i, CANCELLED)
                    for i, entry in enumerate(entries)
                    if i != winner and entry is not None and entry.outcome is None
                )
                commands.append(Settle(seq, Succeeded(str(winner))))
                return decision(waiting=(first + winner,), race=True)
        if isinstance(event, AllOf | AnyOf):
            outcome = _group_outcome(event, recorded, entries, first, running, commands)
        else:
            outcome = recorded.outcome
        if outcome is None:
            pending = tuple(first + i for i, entry in enumerate(entries) if entry and entry.outcome is None)
            if not (cancel and not delivered):
                return decision(waiting=pending, race=isinstance(event, AnyOf))
            commands.extend(Settle(leaf_seq, CANCELLED) for leaf_seq in pending if leaf_seq not in running)
            reporting = tuple(leaf_seq for leaf_seq in pending if leaf_seq in running)
            if reporting:  # a running attempt reports first; the cancel is raised once it has
                return decision(waiting=reporting)
            if group is not None:
                commands.append(Settle(seq, CANCELLED))
            delivered = True
            outcome = CANCELLED
        elif outcome is CANCELLED and cancel:
            delivered = True  # a step that reported after the cancel: it is raised at that step's yield
        event = _feed(interpreter, event, outcome, entries, width, deadline)


def _in_inbox(leaf: Leaf, inbox: Inbox) -> bool:
    """Whether ``leaf`` waits for a signal or an update that is already in the inbox."""
    return isinstance(leaf, WaitSignal | WaitUpdate) and (leaf.kind, leaf.name) in inbox


def _waiting_message(group: AnyOf, inbox: Inbox) -> int | None:
    """The first signal or update wait of ``group`` whose message is already in the inbox."""
    return next((index for index, leaf in enumerate(group.requests) if _in_inbox(leaf, inbox)), None)


def _waiting_message_first(group: AnyOf, entries: list[Recorded | None], inbox: Inbox) -> int | None:
    """A pending wait of ``group`` whose signal (or update) is in the inbox, if no leaf of lower index has finished.

    "If several requests finished before the run advanced, the lowest index decides": a
    signal in the inbox finished its wait when it was sent, whether or not a worker has
    taken it yet, so it beats a timer of higher index that fired meanwhile.
    """
    for index, (leaf, entry) in enumerate(zip(group.requests, entries, strict=True)):
        if entry is None:
            return None
        if entry.outcome is not None:
            return None  # a lower index finished: the usual resolution
        if _in_inbox(leaf, inbox):
            return index
    return None


def _group_outcome(
    group: Group,
    recorded: Recorded,
    entries: list[Recorded | None],
    first: int,
    running: Container[int],
    commands: list[Command],
) -> Outcome | None:
    """The group's recorded resolution, or decide it now from its leaves (and cancel the losers).

    A leaf cancelled while the group is unresolved means the run's cancel is under way:
    once no leaf is still running, the whole group is cancelled.
    """
    if recorded.outcome is not None:
        return recorded.outcome
    outcomes = [entry.outcome if entry else None for entry in entries]
    if any(outcome is CANCELLED for outcome in outcomes):
        if any(outcome is None and first + i in running for i, outcome in enumerate(outcomes)):
            return None
        commands.extend(Settle(first + i, CANCELLED) for i, outcome in enumerate(outcomes) if outcome is None)
        commands.append(Settle(first - 1, CANCELLED))
        return CANCELLED
    decided: int | None
    if isinstance(group, AnyOf):
        decided = next((i for i, outcome in enumerate(outcomes) if outcome is not None), None)
        if decided is None:
            return None
    else:
        decided = next((i for i, outcome in enumerate(outcomes) if isinstance(outcome, Failed)), None)
        if decided is None and any(outcome is None for outcome in outcomes):
            return None
    resolution = Succeeded("null" if decided is None else str(decided))
    commands.extend(Settle(first + i, CANCELLED) for i, outcome in enumerate(outcomes) if outcome is None)
    commands.append(Settle(first - 1, resolution))
    return resolution


def _feed(
    interpreter: Interpreter,
    event: Leaf | Group,
    outcome: Outcome,
    entries: list[Recorded | None],
    width: int,
    deadline: bool,
) -> Event:
    if isinstance(outcome, _Cancelled):
        return interpreter.throw(_cancel_error(deadline), consumed=width)
    if not isinstance(event, AllOf | AnyOf):
        return _feed_leaf(interpreter, event, outcome, width, None, deadline)
    assert isinstance(outcome, Succeeded)
    decided = codec.decode(outcome.value_json)
    outcomes = [entry.outcome if entry else None for entry in entries]
    if decided is None:  # every leaf of an all_of succeeded (or timed out)
        values = [_value(leaf, outcome) for leaf, outcome in zip(event.requests, outcomes, strict=True)]
        for value in values:
            _received(interpreter, value)
        return interpreter.send(values, consumed=width)
    leaf_outcome = outcomes[decided]
    assert leaf_outcome is not None
    wrap = decided if isinstance(event, AnyOf) else None
    return _feed_leaf(interpreter, event.requests[decided], leaf_outcome, width, wrap, deadline)


def _value(leaf: Leaf, outcome: Outcome | None) -> Any:
    """What a finished leaf's yield returns: its value, or a timed-out wait's default."""
    if isinstance(outcome, _TimedOut):
        return leaf.default if isinstance(leaf, WaitSignal | WaitUpdate) else None
    assert isinstance(outcome, Succeeded)
    if isinstance(leaf, WaitUpdate):
        return UpdateRequest.from_json(outcome.value_json)
    return codec.decode(outcome.value_json)


def _received(interpreter: Interpreter, value: Any) -> None:
    if isinstance(value, UpdateRequest):  # reply() and reject() check the code answers what it received
        interpreter.reads.updates.setdefault(value.update_id, False)


def _feed_leaf(
    interpreter: Interpreter, leaf: Leaf, outcome: Outcome, width: int, wrap: int | None, deadline: bool
) -> Event:
    if isinstance(outcome, Succeeded | _TimedOut):
        value = _value(leaf, outcome)
        _received(interpreter, value)
        return interpreter.send(value if wrap is None else [wrap, value], consumed=width)
    if isinstance(outcome, _Cancelled):
        return interpreter.throw(_cancel_error(deadline), consumed=width)
    error = outcome.error
    failure = ChildFailed if isinstance(leaf, ChildCall) else StepFailed
    return interpreter.throw(failure(leaf.name, error.type, error.message, error.traceback), consumed=width)
