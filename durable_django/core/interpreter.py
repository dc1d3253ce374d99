"""Drive one workflow generator: start it, send values or throw errors in, see what it yields.

Workflow code always runs with :func:`in_workflow` true, so a step or child workflow
called there builds a request instead of running.
"""

from __future__ import annotations

import contextvars
import inspect
import traceback as tb
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from ..exceptions import Cancelled, InvalidYield, SerializationError
from . import codec, info
from .requests import Request, is_request

__all__ = ["ErrorInfo", "Event", "Interpreter", "Raised", "Returned", "error_info", "in_workflow"]

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

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    def as_json(self) -> str:
        return codec.encode(self.as_dict())

    @classmethod
    def from_json(cls, text: str) -> ErrorInfo:
        data = codec.decode(text)
        return cls(type=data["type"], message=data["message"], traceback=data.get("traceback", ""))


#: Characters of an error's message, and of its traceback, kept (the end of a traceback is what matters).
_ERROR_CHARS = 20_000


def error_info(error: BaseException) -> ErrorInfo:
    kind = type(error)
    message = str(error).replace("\x00", "\\x00")[:_ERROR_CHARS]
    trace = "".join(tb.format_exception(error)).replace("\x00", "\\x00")[-_ERROR_CHARS:]
    return ErrorInfo(type=f"{kind.__module__}.{kind.__qualname__}", message=message, traceback=trace)


@dataclass(frozen=True, slots=True)
class Returned:
    """The workflow returned; ``value_json`` is its encoded return value."""

    value_json: str


@dataclass(frozen=True, slots=True)
class Raised:
    """The workflow raised; ``cancelled`` when it let :class:`Cancelled` escape."""

    error: ErrorInfo
    cancelled: bool = False


Event = Request | Returned | Raised


class Interpreter:
    """One live workflow generator and the history position it waits at.

    ``position`` is the sequence number of the next history entry the generator reads:
    every value sent in moves it past the entries that value came from.
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
        #: What the code reads of its run (``durable.workflow_info()``, ``now()``, ``uuid4()``); the store binds it.
        self.reads = info.Reads(name)
        self._current: Event | None = None

    @property
    def current(self) -> Event:
        """What the generator yielded last, or how it ended; it starts at the first look (once ``reads`` is bound)."""
        if self._current is None:
            self._current = self._run(self._start)
        return self._current

    def _start(self) -> Any:
        self._generator = self._func(*self._args, **self._kwargs)
        return next(self._generator)

    def send(self, value: Any, consumed: int) -> Event:
        """Resume with ``value`` as the result of the current ``yield``."""
        generator = self._live()
        self.position += consumed
        self._current = self._run(lambda: generator.send(value))
        return self._current

    def throw(self, error: BaseException, consumed: int) -> Event:
        """Raise ``error`` at the current ``yield``."""
        generator = self._live()
        self.position += consumed
        self._current = self._run(lambda: generator.throw(error))
        return self._current

    def local_variables(self) -> dict[str, Any]:
        """The generator's local variables where it is suspended now (empty once it ended)."""
        # A copy: since Python 3.13 a frame's locals are a live view, gone once the generator closes.
        return dict(inspect.getgeneratorlocals(self._generator)) if self._generator is not None else {}

    def _live(self) -> Generator[Any, Any, Any]:
        if self._generator is None or isinstance(self.current, Returned | Raised):
            raise RuntimeError(f"workflow {self.name!r} has already ended")
        return self._generator

    def _run(self, action: Callable[[], Any]) -> Event:
        token = _inside_workflow.set(True)
        reading = info.current.set((self.reads, self._position))
        try:
            yielded = action()
        except StopIteration as stop:
            return self._returned(stop.value)
        except Cancelled as error:
            return Raised(error_info(error), cancelled=True)
        except Exception as error:  # the workflow raised: the run fails with this error
            return Raised(error_info(error))
        finally:
            info.current.reset(reading)
            _inside_workflow.reset(token)
        if is_request(yielded):
            return yielded  # type: ignore[no-any-return]
        return Raised(error_info(InvalidYield(self._invalid_yield(yielded))))

    def _position(self) -> int:
        return self.position

    def _returned(self, value: Any) -> Event:
        try:
            return Returned(codec.encode(value, f"the return value of workflow {self.name!r}"))
        except SerializationError as error:
            return Raised(error_info(error))

    def _invalid_yield(self, value: Any) -> str:
        what = f"{type(value).__module__}.{type(value).__qualname__}"
        hint = "yield a step call such as charge_card(order_id), or a durable.sleep(), wait_signal(), all_of()..."
        kind = getattr(value, "durable_kind", None)
        if kind in {"step", "workflow"}:
            hint = f"call it: yield {value.name.rsplit('.', 1)[-1]}(...), not the function itself"
        elif hasattr(value, "send") and hasattr(value, "throw"):
            hint = "a generator cannot be yielded; call the @durable.workflow itself to run it as a child"
        return f"workflow {self.name!r} yielded {what} at position #{self.position}, which is not a request; {hint}."

    def close(self) -> None:
        """Close the generator as workflow code, so a ``finally`` builds requests, not calls.

        Closing runs the workflow's ``finally`` blocks; nothing they request is executed.
        """
        generator, self._generator = self._generator, None
        if generator is None:
            return
        token = _inside_workflow.set(True)
        reading = info.current.set((self.reads, self._position))
        try:
            generator.close()
        except Exception:  # a finally that yields or raises while being discarded
            pass
        finally:
            info.current.reset(reading)
            _inside_workflow.reset(token)

    def __del__(self) -> None:
        # Without this, garbage collection would close the generator outside workflow
        # context, and a step called in a ``finally`` would run for real. In a copy of the
        # context: the collector may run this in the middle of a ContextVar.set() of the code
        # it interrupted, and setting a variable of that same context then frees what the
        # interrupted set still reads (CPython 3.10 and 3.11, python/cpython#148891: a full
        # test run saw a segfault, and a LookupError from ContextVar.reset, in this module).
        contextvars.copy_context().run(self.close)
