"""The reference model's own requests and exceptions: what the walker yields and catches in the model.

Nothing here (or anywhere in the model) imports durable_django: the model is written from
the documented semantics only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .program import Program, Stmt
from .walker import Outcome


class StepFailed(Exception):
    pass


class ChildFailed(Exception):
    pass


class Cancelled(BaseException):
    pass


class DeadlineExceeded(Cancelled):
    """ "It *is* a durable.Cancelled" (docs/cancellation.md#deadlines)."""


ERRORS: dict[str, type[BaseException]] = {
    "DeadlineExceeded": DeadlineExceeded,
    "StepFailed": StepFailed,
    "ChildFailed": ChildFailed,
    "Cancelled": Cancelled,
}


@dataclass(frozen=True)
class Step:
    tag: str
    kind: str
    policy: str
    do: tuple[Any, ...]


@dataclass(frozen=True)
class Sleep:
    seconds: int


@dataclass(frozen=True)
class Wait:
    name: str
    timeout: int | None


@dataclass(frozen=True)
class WaitUpdate:
    name: str
    timeout: int | None
    default: Any


@dataclass(frozen=True)
class UpdateRequest:
    """What a wait_update returns: "a durable.UpdateRequest with update_id, name and payload"."""

    update_id: str
    name: str
    payload: Any


@dataclass(frozen=True)
class Answer:
    request: UpdateRequest
    verdict: str  # "reply" or "reject"
    text: str  # the reply's value, or the rejection's reason


@dataclass(frozen=True)
class Child:
    program: Program
    scope: str
    timeout: int | None = None


Leaf = Step | Sleep | Wait | WaitUpdate | Child


@dataclass(frozen=True)
class Group:
    kind: str  # "all_of" or "any_of"
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True)
class Patched:
    change: str


@dataclass(frozen=True)
class SetState:
    value: str


@dataclass(frozen=True)
class ContinueAsNew:
    gen: int


class ModelVocabulary:
    """The walker's vocabulary in the model: plain records, and observations to ``observe``."""

    errors = ERRORS

    def __init__(self, observe: Callable[[str, int, int, Outcome], None], info: Callable[[], list[Any]]) -> None:
        self._observe = observe
        self._info = info

    def step(self, stmt: Stmt, tag: str) -> Step:
        return Step(tag, stmt["kind"], stmt["policy"], tuple(stmt["do"]))

    def sleep(self, seconds: int) -> Sleep:
        return Sleep(seconds)

    def wait(self, name: str, timeout: int | None) -> Wait:
        return Wait(name, timeout)

    def wait_update(self, name: str, timeout: int | None, default: Any) -> WaitUpdate:
        return WaitUpdate(name, timeout, default)

    def answer(self, request: Any, verdict: str, text: str) -> Answer:
        return Answer(request, verdict, text)

    def update_id(self, value: Any) -> str | None:
        return value.update_id if isinstance(value, UpdateRequest) else None

    def plain(self, value: Any) -> Any:
        if isinstance(value, UpdateRequest):
            return ["update", value.update_id, value.name, value.payload]
        return [self.plain(item) for item in value] if isinstance(value, list) else value

    def child(self, program: Program, scope: str, timeout: int | None) -> Child:
        return Child(program, scope, timeout)

    def all_of(self, leaves: list[Leaf]) -> Group:
        return Group("all_of", tuple(leaves))

    def any_of(self, leaves: list[Leaf]) -> Group:
        return Group("any_of", tuple(leaves))

    def patched(self, change: str) -> Patched:
        return Patched(change)

    def set_state(self, value: str) -> SetState:
        return SetState(value)

    def info(self) -> list[Any]:
        return self._info()

    def continue_as_new(self, program: Program, scope: str, gen: int) -> ContinueAsNew:
        return ContinueAsNew(gen)

    def observe(self, scope: str, gen: int, index: int, outcome: Outcome, steps: list[str]) -> None:
        self._observe(scope, gen, index, outcome)
