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


ERRORS: dict[str, type[BaseException]] = {"StepFailed": StepFailed, "ChildFailed": ChildFailed, "Cancelled": Cancelled}


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
class Child:
    program: Program
    scope: str


Leaf = Step | Sleep | Wait | Child


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

    def child(self, program: Program, scope: str) -> Child:
        return Child(program, scope)

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
