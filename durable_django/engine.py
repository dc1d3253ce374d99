"""The replay interpreter: a workflow generator plus its history in, one decision out.

Pure: no ORM, no Celery, no clock. The store feeds it recorded outcomes; the same
:func:`decide` serves a fresh replay from the start and a cached live generator that is
only fed the newest outcome, so both paths give the same answer.
"""

from __future__ import annotations

import contextvars
import traceback as tb
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from . import codec
from .exceptions import SerializationError, StepFailed
from .requests import Request, is_request

__all__ = [
    "Block",
    "Complete",
    "Decision",
    "ErrorInfo",
    "Fail",
    "Failed",
    "Interpreter",
    "Recorded",
    "Schedule",
    "Succeeded",
    "Wait",
    "decide",
    "error_info",
    "in_workflow",
]

_inside_workflow: contextvars.ContextVar[bool] = contextvars.ContextVar("durable_inside_workflow", default=False)


def in_workflow() -> bool:
    """True while workflow code runs, so calling a step there builds a request instead."""
    return _inside_workflow.get()


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception reduced to data that survives JSON."""

    type: str
    message: str
    traceback: str = ""

    def as_json(self) -> str:
        return codec.encode({"type": self.type, "message": self.message, "traceback": self.traceback})

    @classmethod
    def from_json(cls, text: str) -> ErrorInfo:
        data = codec.decode(text)
        return cls(type=data["type"], message=data["message"], traceback=data.get("traceback", ""))


def error_info(error: BaseException) -> ErrorInfo:
    kind = type(error)
    message = str(error).replace("\x00", "\\x00")
    trace = "".join(tb.format_exception(error)).replace("\x00", "\\x00")
    return ErrorInfo(type=f"{kind.__module__}.{kind.__qualname__}", message=message, traceback=trace)


# Outcomes recorded for a request.
@dataclass(frozen=True, slots=True)
class Succeeded:
    value_json: str


@dataclass(frozen=True, slots=True)
class Failed:
    error: ErrorInfo


Outcome = Succeeded | Failed


@dataclass(frozen=True, slots=True)
class Recorded:
    """One history entry: what was requested at a position and, once known, its outcome."""

    kind: str
    name: str
    args_json: str
    outcome: Outcome | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.name}({self.args_json})"


# Decisions.
@dataclass(frozen=True, slots=True)
class Schedule:
    """Record ``request`` at ``seq`` and run it."""

    seq: int
    request: Request


@dataclass(frozen=True, slots=True)
class Wait:
    """The request at ``seq`` is recorded but has no outcome yet: nothing to do."""

    seq: int


@dataclass(frozen=True, slots=True)
class Complete:
    result_json: str


@dataclass(frozen=True, slots=True)
class Fail:
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Block:
    """Replay diverged from history; the run must stop before any side effect."""

    seq: int
    message: str


Decision = Schedule | Wait | Complete | Fail | Block


# What the generator did when last resumed.
@dataclass(frozen=True, slots=True)
class _Returned:
    value: Any


@dataclass(frozen=True, slots=True)
class _Raised:
    error: ErrorInfo


_Event = Request | _Returned | _Raised


class Interpreter:
    """Drives one workflow generator, one request at a time.

    ``position`` is the sequence number of the request the generator is waiting on.
    """

    def __init__(
        self, name: str, func: Callable[..., Generator[Any, Any, Any]], args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        self.name = name
        self.position = 0
        self._generator: Generator[Any, Any, Any] | None = None
        self._func = func
        self._args = args
        self._kwargs = kwargs
        self.current: _Event = self._run(self._start)

    def _start(self) -> Any:
        self._generator = self._func(*self._args, **self._kwargs)
        return next(self._generator)

    def resume(self, outcome: Outcome, step: str) -> _Event:
        """Send a recorded outcome into the generator and return what it does next."""
        self.position += 1
        generator = self._generator
        assert generator is not None
        if isinstance(outcome, Succeeded):
            value = codec.decode(outcome.value_json)
            self.current = self._run(lambda: generator.send(value))
        else:
            error = StepFailed(step, outcome.error.type, outcome.error.message, outcome.error.traceback)
            self.current = self._run(lambda: generator.throw(error))
        return self.current

    def _run(self, action: Callable[[], Any]) -> _Event:
        token = _inside_workflow.set(True)
        try:
            yielded = action()
        except StopIteration as stop:
            return self._returned(stop.value)
        except Exception as error:  # the workflow raised: the run fails with this error
            return _Raised(error_info(error))
        finally:
            _inside_workflow.reset(token)
        if is_request(yielded):
            return yielded
        return _Raised(ErrorInfo(type="durable_django.InvalidYield", message=self._invalid_yield(yielded)))

    def _returned(self, value: Any) -> _Event:
        try:
            return _Returned(codec.encode(value, f"the return value of workflow {self.name!r}"))
        except SerializationError as error:
            return _Raised(error_info(error))

    def _invalid_yield(self, value: Any) -> str:
        what = f"{type(value).__module__}.{type(value).__qualname__}"
        hint = "yield a step call such as charge_card(order_id)"
        if getattr(value, "durable_kind", None) == "step":
            hint = f"call the step: yield {value.name.rsplit('.', 1)[-1]}(...), not the function itself"
        elif hasattr(value, "send") and hasattr(value, "throw"):
            hint = "a generator cannot be yielded; yield step calls, and start other workflows with .start()"
        return f"workflow {self.name!r} yielded {what} at step #{self.position}, which is not a request; {hint}."

    def close(self) -> None:
        """Close the generator as workflow code, so a ``finally`` builds requests, not calls.

        Closing runs the workflow's ``finally`` blocks; they must not yield (that is an
        error Python reports), and nothing they request is executed.
        """
        generator, self._generator = self._generator, None
        if generator is None:
            return
        token = _inside_workflow.set(True)
        try:
            generator.close()
        except Exception:
            pass
        finally:
            _inside_workflow.reset(token)

    def __del__(self) -> None:
        # Without this, garbage collection would close the generator outside workflow
        # context, and a step called in a ``finally`` would run for real.
        self.close()


def decide(interpreter: Interpreter, history: Mapping[int, Recorded]) -> Decision:
    """Feed recorded outcomes into ``interpreter`` until the workflow needs something new.

    ``history`` maps sequence numbers to entries; it must hold every position from the
    interpreter's current one up to the last recorded one.
    """
    event = interpreter.current
    while True:
        if isinstance(event, _Returned):
            return Complete(event.value)
        if isinstance(event, _Raised):
            return Fail(event.error)
        seq = interpreter.position
        recorded = history.get(seq)
        if recorded is None:
            return Schedule(seq, event)
        if (recorded.kind, recorded.name, recorded.args_json) != (event.kind, event.step, event.args_json):
            return Block(seq, _divergence(interpreter.name, seq, recorded, event))
        if recorded.outcome is None:
            return Wait(seq)
        event = interpreter.resume(recorded.outcome, recorded.name)


def _divergence(workflow: str, seq: int, recorded: Recorded, yielded: Request) -> str:
    return (
        f"Non-determinism in workflow {workflow!r} at step #{seq}: history recorded "
        f"{recorded.describe()} but the code now yields {yielded.describe()}. "
        "Deploy the code that started this run, or branch with durable.patched(), then resume the run."
    )
