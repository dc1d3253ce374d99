"""What the engine reads and what it says: recorded outcomes, the commands to persist, how a run ends.

Plain frozen data, shared by the engine (:mod:`.engine`), which decides, and the store,
which persists: neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass

from .interpreter import ErrorInfo
from .requests import Group, Leaf, Patched, Reply, SetState

__all__ = [
    "CANCELLED",
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
    request: Leaf | Group | Patched | SetState | Reply
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
