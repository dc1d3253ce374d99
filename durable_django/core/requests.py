"""What a workflow may yield: requests as plain data.

The generator never does I/O; it yields one of these and the engine decides what happens.
Every leaf request is compared with history by ``(kind, name, args_json)``, so replay
detects a changed step, duration, signal name or argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..exceptions import InvalidRequest
from . import codec
from .durations import due_instant, wait_seconds
from .info import answering

__all__ = [
    "AllOf",
    "AnyOf",
    "ChildCall",
    "ContinueAsNew",
    "Group",
    "Kind",
    "Leaf",
    "Patched",
    "Reply",
    "Request",
    "SetState",
    "Sleep",
    "StepCall",
    "UpdateRequest",
    "WaitSignal",
    "WaitUpdate",
    "all_of",
    "any_of",
    "continue_as_new",
    "decode_arguments",
    "deprecate_patch",
    "describe",
    "encode_arguments",
    "is_request",
    "patched",
    "reject",
    "reply",
    "set_state",
    "sleep",
    "sleep_until",
    "wait_signal",
    "wait_update",
]


def encode_arguments(args: Iterable[Any], kwargs: dict[str, Any], what: str) -> str:
    """Encode call arguments as ``{"args": [...], "kwargs": {...}}``, naming any bad path."""
    args = list(args)
    for index, value in enumerate(args):
        codec.encode(value, f"{what}: args[{index}]")
    for key, value in kwargs.items():
        codec.encode(value, f"{what}: kwargs[{key!r}]")
    return codec.encode({"args": args, "kwargs": kwargs})


class Kind(StrEnum):
    """What a request is, as its history entry records it (``HistoryEntry.Kind`` has the same values)."""

    STEP = "step"
    SLEEP = "sleep"
    SIGNAL = "signal"
    CHILD = "child"
    STATE = "state"
    PATCHED = "patched"
    ALL_OF = "all_of"
    ANY_OF = "any_of"
    UPDATE = "update"
    REPLY = "reply"


def decode_arguments(text: str) -> tuple[list[Any], dict[str, Any]]:
    """The ``(args, kwargs)`` that :func:`encode_arguments` encoded."""
    data = codec.decode(text)
    return data["args"], data["kwargs"]


@dataclass(frozen=True, slots=True)
class StepCall:
    """Run the step registered as ``name`` with JSON-encoded arguments."""

    name: str
    args_json: str
    kind = Kind.STEP


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait until a timer fires: ``args_json`` holds either ``seconds`` or an ISO ``until``."""

    args_json: str
    kind = Kind.SLEEP
    name = ""


@dataclass(frozen=True, slots=True)
class WaitSignal:
    """Wait for the next signal called ``name``; ``default`` comes back if ``timeout`` passes first.

    ``default`` is the workflow's own object (a sentinel, say): it is not stored, and replay
    compares the request without it.
    """

    name: str
    args_json: str
    default: Any = field(default=None, compare=False)
    kind = Kind.SIGNAL


@dataclass(frozen=True, slots=True)
class ChildCall:
    """Start the workflow registered as ``name`` as a child and wait for its result.

    ``workflow_id`` is the child's id when the parent chose one (``other.using(workflow_id=...)``);
    history links the child by its run, so replay does not compare it. Nor ``timeout_seconds``,
    the child's own time limit (``timeout=``), capped by the parent's deadline.
    """

    name: str
    args_json: str
    workflow_id: str | None = None
    timeout_seconds: float | None = None
    kind = Kind.CHILD


@dataclass(frozen=True, slots=True)
class SetState:
    """Publish ``args_json`` as the run's state, readable without replay."""

    args_json: str
    kind = Kind.STATE
    name = ""


@dataclass(frozen=True, slots=True)
class Patched:
    """Ask whether this run takes the code path introduced by change ``name``.

    ``deprecated``: the old path is gone (``deprecate_patch``); a recorded marker is read
    past, a new run records none, and the yield returns None.
    """

    name: str
    deprecated: bool = False
    kind = Kind.PATCHED
    args_json = "{}"


@dataclass(frozen=True, slots=True)
class ContinueAsNew:
    """End this run's history and start over with new arguments, as the same workflow id."""

    args_json: str


@dataclass(frozen=True, slots=True)
class WaitUpdate:
    """Wait for the next update called ``name``; an :class:`UpdateRequest` comes back, or ``default`` on timeout."""

    name: str
    args_json: str
    default: Any = field(default=None, compare=False)
    kind = Kind.UPDATE


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """An update the workflow received with ``wait_update()``: answer it with ``reply()`` or ``reject()``.

    ``update_id`` is the caller's (or a generated) id of this update; ``payload`` its JSON value.
    """

    update_id: str
    name: str
    payload: Any = None

    def as_json(self) -> str:
        return codec.encode({"update_id": self.update_id, "name": self.name, "payload": self.payload})

    @classmethod
    def from_json(cls, text: str) -> UpdateRequest:
        data = codec.decode(text)
        return cls(update_id=data["update_id"], name=data["name"], payload=data["payload"])


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer update ``name``: ``args_json`` holds its id and either ``value`` or ``error`` (a rejection)."""

    name: str
    args_json: str
    kind = Kind.REPLY


Leaf = StepCall | Sleep | WaitSignal | ChildCall | SetState | WaitUpdate


@dataclass(frozen=True, slots=True)
class AllOf:
    """Wait for every request; the values come back as a list, in order."""

    requests: tuple[Leaf, ...]
    kind = Kind.ALL_OF
    name = ""

    @property
    def args_json(self) -> str:
        return str(len(self.requests))


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Wait for the first request to finish; ``[index, value]`` comes back and the rest are cancelled."""

    requests: tuple[Leaf, ...]
    kind = Kind.ANY_OF
    name = ""

    @property
    def args_json(self) -> str:
        return str(len(self.requests))


Group = AllOf | AnyOf
Request = Leaf | Group | Patched | ContinueAsNew | Reply
_GROUPABLE = (StepCall, Sleep, WaitSignal, WaitUpdate, ChildCall)
_LEAVES = (*_GROUPABLE, SetState)
_REQUESTS = (*_LEAVES, AllOf, AnyOf, Patched, ContinueAsNew, Reply)


def is_request(value: object) -> bool:
    return isinstance(value, _REQUESTS)


def describe(kind: str, name: str, args_json: str) -> str:
    """How a request reads in messages: ``step shop.charge({"args":[1],"kwargs":{}})``."""
    return f"{kind} {name}({args_json})" if name else f"{kind}({args_json})"


def sleep(duration: timedelta) -> Sleep:
    """Sleep durably for ``duration``: a database timer, no worker or message held meanwhile."""
    return Sleep(codec.encode({"seconds": wait_seconds(duration, "durable.sleep()")}))


def sleep_until(when: datetime) -> Sleep:
    """Sleep durably until the aware datetime ``when`` (judged by the database's clock)."""
    if not isinstance(when, datetime):
        raise InvalidRequest(f"durable.sleep_until() takes a datetime, not {when!r}.")
    due_instant(when, f"durable.sleep_until({when!r})")
    return Sleep(codec.encode({"until": when.isoformat()}))


def wait_signal(name: str, timeout: timedelta | None = None, *, default: Any = None) -> WaitSignal:
    """Wait for the next signal ``name``; returns its payload, or ``default`` once ``timeout`` passes.

    A signal sent without a payload returns ``None``; pass a ``default`` of your own (any
    object, it is not stored) to tell a timeout apart from it.
    """
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidRequest(f"durable.wait_signal(name={name!r}) needs a signal name of 1 to 255 characters.")
    seconds = None if timeout is None else wait_seconds(timeout, "durable.wait_signal(timeout=...)")
    return WaitSignal(name, codec.encode({"timeout": seconds}), default)


def _group(kind: type[AllOf] | type[AnyOf], label: str, requests: tuple[object, ...]) -> AllOf | AnyOf:
    if not requests:
        raise InvalidRequest(f"durable.{label}() needs at least one request.")
    for index, request in enumerate(requests):
        if not isinstance(request, _GROUPABLE):
            raise InvalidRequest(
                f"durable.{label}() argument {index} is {request!r}; pass step calls, sleeps, signal or update waits "
                "or child workflow calls (groups do not nest)."
            )
    return kind(tuple(requests))  # type: ignore[arg-type]


def all_of(*requests: Leaf) -> AllOf:
    """Run the requests in parallel and wait for all; a failure is raised at the yield."""
    return _group(AllOf, "all_of", requests)  # type: ignore[return-value]


def any_of(*requests: Leaf) -> AnyOf:
    """Run the requests in parallel; the first to finish wins and the others are cancelled."""
    return _group(AnyOf, "any_of", requests)  # type: ignore[return-value]


def patched(change_id: str) -> Patched:
    """``if (yield durable.patched("id")):`` is True for new runs, False for runs already past this point."""
    if not isinstance(change_id, str) or not change_id or len(change_id) > 255:
        raise InvalidRequest(f"durable.patched({change_id!r}) needs a change id of 1 to 255 characters.")
    return Patched(change_id)


def deprecate_patch(change_id: str) -> Patched:
    """``yield durable.deprecate_patch("id")`` once no run on the old branch of ``patched("id")`` is left.

    Runs that recorded the patch's marker read past it; runs that did not (started after
    this deploy) record nothing. Remove the call once no run that recorded the marker is live.
    """
    if not isinstance(change_id, str) or not change_id or len(change_id) > 255:
        raise InvalidRequest(f"durable.deprecate_patch({change_id!r}) needs a change id of 1 to 255 characters.")
    return Patched(change_id, deprecated=True)


def set_state(value: Any) -> SetState:
    """Publish ``value`` (JSON) as the run's state; ``run.state`` reads it without replay."""
    return SetState(codec.encode(value, "durable.set_state() value"))


def continue_as_new(*args: Any, **kwargs: Any) -> ContinueAsNew:
    """Restart this workflow with new arguments and an empty history, keeping unconsumed signals."""
    return ContinueAsNew(encode_arguments(args, kwargs, "durable.continue_as_new()"))


def _name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidRequest(f"{what} needs an update name of 1 to 255 characters, not {name!r}.")
    return name


def wait_update(name: str, timeout: timedelta | None = None, *, default: Any = None) -> WaitUpdate:
    """Wait for the next update ``name`` (oldest first); returns an :class:`UpdateRequest`, or ``default`` on timeout.

    Answer it with ``yield durable.reply(request, value)`` or ``yield durable.reject(request, reason)``.
    """
    _name(name, f"durable.wait_update(name={name!r})")
    seconds = None if timeout is None else wait_seconds(timeout, "durable.wait_update(timeout=...)")
    return WaitUpdate(name, codec.encode({"timeout": seconds}), default)


def _answer(call: str, request: object, answer: dict[str, Any]) -> Reply:
    if not isinstance(request, UpdateRequest):
        raise InvalidRequest(
            f"durable.{call} takes the request that `yield durable.wait_update(name)` returned, not {request!r}."
        )
    answering(call, request.update_id)
    return Reply(request.name, codec.encode({"update_id": request.update_id, **answer}, f"the {call} value"))


def reply(request: UpdateRequest, value: Any = None) -> Reply:
    """Answer the update ``request`` with ``value`` (JSON): the caller's ``run.update()`` returns it."""
    return _answer("reply()", request, {"value": value})


def reject(request: UpdateRequest, reason: str) -> Reply:
    """Refuse the update ``request``: the caller's ``run.update()`` raises ``UpdateRejected(reason)``."""
    if not isinstance(reason, str) or not reason:
        raise InvalidRequest(f"durable.reject() needs a reason, a non-empty str, not {reason!r}.")
    return _answer("reject()", request, {"error": reason})
