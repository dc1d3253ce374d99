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
from dataclasses import dataclass
from typing import Any

from ..exceptions import Cancelled, ChildFailed, StepFailed
from . import codec
from .interpreter import ErrorInfo, Event, Interpreter, Raised, Returned
from .requests import AllOf, AnyOf, ChildCall, ContinueAsNew, Group, Leaf, Patched, SetState, WaitSignal, describe

__all__ = [
    "CANCELLED",
    "NO_SIGNALS",
    "TIMED_OUT",
    "Block",
    "Complete",
    "Decision",
    "Fail",
    "Failed",
    "Note",
    "Open",
    "Recorded",
    "Restart",
    "Settle",
    "Succeeded",
    "decide",
]


# Outcomes recorded for a history entry.
@dataclass(frozen=True, slots=True)
class Succeeded:
    value_json: str


@dataclass(frozen=True, slots=True)
class Failed:
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class _Cancelled:
    pass


@dataclass(frozen=True, slots=True)
class _TimedOut:
    """A signal wait whose timeout came first: the wait returns its ``default``."""


CANCELLED = _Cancelled()
TIMED_OUT = _TimedOut()
_CANCEL_MESSAGE = "the run was cancelled (run.cancel())"
Outcome = Succeeded | Failed | _Cancelled | _TimedOut


@dataclass(frozen=True, slots=True)
class Recorded:
    """One history entry: what was requested at a position and, once known, its outcome.

    A group's outcome names the leaf that decided it: ``Succeeded("2")`` for leaf 2,
    ``Succeeded("null")`` when every leaf of an ``all_of`` succeeded.
    """

    kind: str
    name: str
    args_json: str
    outcome: Outcome | None = None


# Commands: what the store must persist, in order, in the same transaction.
@dataclass(frozen=True, slots=True)
class Open:
    """A new pending entry: start the leaf (or note the group) at ``seq``."""

    seq: int
    request: Leaf | Group
    group: int | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """A new entry whose outcome is already known (a patch marker, a state, a cancelled request)."""

    seq: int
    request: Leaf | Group | Patched | SetState
    outcome: Outcome
    group: int | None = None


@dataclass(frozen=True, slots=True)
class Settle:
    """Set the outcome of the pending entry at ``seq``; ``CANCELLED`` also stops its work."""

    seq: int
    outcome: Outcome


Command = Open | Note | Settle


# How a decision ends the run, if it does.
@dataclass(frozen=True, slots=True)
class Complete:
    result_json: str


@dataclass(frozen=True, slots=True)
class Fail:
    error: ErrorInfo
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Block:
    """Replay diverged from history; the run must stop before any side effect."""

    seq: int
    message: str


@dataclass(frozen=True, slots=True)
class Restart:
    """``continue_as_new``: start over with ``args_json`` and an empty history."""

    args_json: str


End = Complete | Fail | Block | Restart


@dataclass(frozen=True, slots=True)
class Decision:
    """Commands to persist, then either an end or the leaf entries the run now waits on."""

    commands: tuple[Command, ...] = ()
    end: End | None = None
    waiting: tuple[int, ...] = ()
    cancel_delivered: bool = False
    #: The waiting leaves are an ``any_of``'s: the first outcome decides, and once one has,
    #: the others must take nothing (no signal).
    race: bool = False


#: An inbox with nothing in it, for replays that must not take signals.
NO_SIGNALS: Container[str] = frozenset()


def decide(
    interpreter: Interpreter,
    history: Mapping[int, Recorded],
    *,
    cancel: bool = False,
    running: Container[int] = frozenset(),
    inbox: Container[str] = NO_SIGNALS,
) -> Decision:
    """Feed recorded outcomes into ``interpreter`` until the workflow needs something new.

    ``history`` must hold every entry from the interpreter's position on.

    ``cancel``: a cancel is pending. :class:`~durable_django.Cancelled` is raised at the first
    yield that has no outcome yet, after that yield's pending work is cancelled; work in
    ``running`` (the positions of steps whose attempt runs now) is left to report first, and
    the cancel waits for it. A step that reports while the cancel is pending is recorded with
    a cancelled outcome, so ``Cancelled`` is raised at that step's yield.

    ``inbox``: the names of signals waiting in the run's inbox. An ``any_of`` whose signal
    wait can be satisfied at once is decided as it opens: that wait wins, and the other
    requests are recorded as cancelled without starting (no step runs, no other wait takes
    a signal).
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
                return decision(Block(seq, _ended_early(interpreter.name, seq, recorded)))
            if isinstance(event, Returned):
                return decision(Complete(event.value_json))
            if isinstance(event, Raised):
                return decision(Fail(event.error, cancelled=event.cancelled))
            return decision(Restart(event.args_json))
        if isinstance(event, Patched):
            if recorded is None:  # running new code: take the new branch and remember that
                commands.append(Note(seq, event, Succeeded("true")))
                event = interpreter.send(True, consumed=1)
            elif (recorded.kind, recorded.name) == (event.kind, event.name):
                event = interpreter.send(True, consumed=1)
            else:  # history was written by code without this patch
                event = interpreter.send(False, consumed=0)
            continue
        if isinstance(event, SetState):
            if recorded is None:
                commands.append(Note(seq, event, Succeeded("null")))
            elif not _same(recorded, event):
                return decision(Block(seq, _divergence(interpreter.name, seq, recorded, event)))
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
                event = interpreter.throw(Cancelled(_CANCEL_MESSAGE), consumed=width)
                continue
            winner = _waiting_signal(event, inbox) if isinstance(event, AnyOf) else None
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
        mismatch = _mismatch(interpreter.name, seq, first, event, recorded, leaves, entries)
        if mismatch is not None:
            return decision(mismatch)
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
        event = _feed(interpreter, event, outcome, entries, width)


def _waiting_signal(group: AnyOf, inbox: Container[str]) -> int | None:
    """The first signal wait of ``group`` whose signal is already in the inbox."""
    return next(
        (index for index, leaf in enumerate(group.requests) if isinstance(leaf, WaitSignal) and leaf.name in inbox),
        None,
    )


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
    interpreter: Interpreter, event: Leaf | Group, outcome: Outcome, entries: list[Recorded | None], width: int
) -> Event:
    if isinstance(outcome, _Cancelled):
        return interpreter.throw(Cancelled(_CANCEL_MESSAGE), consumed=width)
    if not isinstance(event, AllOf | AnyOf):
        return _feed_leaf(interpreter, event, outcome, width, wrap=None)
    assert isinstance(outcome, Succeeded)
    decided = codec.decode(outcome.value_json)
    outcomes = [entry.outcome if entry else None for entry in entries]
    if decided is None:  # every leaf of an all_of succeeded (or timed out)
        values = [_value(leaf, outcome) for leaf, outcome in zip(event.requests, outcomes, strict=True)]
        return interpreter.send(values, consumed=width)
    leaf_outcome = outcomes[decided]
    assert leaf_outcome is not None
    wrap = decided if isinstance(event, AnyOf) else None
    return _feed_leaf(interpreter, event.requests[decided], leaf_outcome, width, wrap=wrap)


def _value(leaf: Leaf, outcome: Outcome | None) -> Any:
    """What a finished leaf's yield returns: its value, or a timed-out wait's default."""
    if isinstance(outcome, _TimedOut):
        return leaf.default if isinstance(leaf, WaitSignal) else None
    assert isinstance(outcome, Succeeded)
    return codec.decode(outcome.value_json)


def _feed_leaf(interpreter: Interpreter, leaf: Leaf, outcome: Outcome, width: int, wrap: int | None) -> Event:
    if isinstance(outcome, Succeeded | _TimedOut):
        value = _value(leaf, outcome)
        return interpreter.send(value if wrap is None else [wrap, value], consumed=width)
    if isinstance(outcome, _Cancelled):
        return interpreter.throw(Cancelled(_CANCEL_MESSAGE), consumed=width)
    error = outcome.error
    failure = ChildFailed if isinstance(leaf, ChildCall) else StepFailed
    return interpreter.throw(failure(leaf.name, error.type, error.message, error.traceback), consumed=width)


def _same(recorded: Recorded, request: Leaf | Group | SetState) -> bool:
    return (recorded.kind, recorded.name, recorded.args_json) == (request.kind, request.name, request.args_json)


def _mismatch(
    workflow: str,
    seq: int,
    first: int,
    event: Leaf | Group,
    recorded: Recorded,
    leaves: tuple[Leaf, ...],
    entries: list[Recorded | None],
) -> Block | None:
    if not _same(recorded, event):
        return Block(seq, _divergence(workflow, seq, recorded, event))
    for index, (leaf, entry) in enumerate(zip(leaves, entries, strict=True)):
        if entry is None:
            message = f"Non-determinism in workflow {workflow!r}: the group at #{seq} has no entry #{first + index}."
            return Block(first + index, message)
        if not _same(entry, leaf):
            return Block(first + index, _divergence(workflow, first + index, entry, leaf))
    return None


def _ended_early(workflow: str, seq: int, recorded: Recorded) -> str:
    return (
        f"Non-determinism in workflow {workflow!r} at position #{seq}: history recorded "
        f"{describe(recorded.kind, recorded.name, recorded.args_json)} but the code now ends there. "
        "Deploy the code that started this run, or branch with durable.patched(), then resume the run."
    )


def _divergence(workflow: str, seq: int, recorded: Recorded, yielded: Leaf | Group | SetState) -> str:
    return (
        f"Non-determinism in workflow {workflow!r} at position #{seq}: history recorded "
        f"{describe(recorded.kind, recorded.name, recorded.args_json)} but the code now yields "
        f"{describe(yielded.kind, yielded.name, yielded.args_json)}. Deploy the code that started this run, "
        "or branch with durable.patched(), then resume the run."
    )
