"""What a program means: a generator that walks its statements and yields one request per leaf.

The walker is written once and given a :class:`Vocabulary`: the registered workflow passes
the engine's requests and exceptions (:mod:`.workflows`), the reference model its own
(:mod:`.model`). So both run the same program the same way, and any difference between
them is a difference in how the requests were carried out, which is what is under test.
Python's own ``try``/``except``/``finally`` gives the handlers their meaning.

Each yield is numbered (per generation) and reported to ``vocabulary.observe`` with what
it returned (``["value", v]``) or raised (``["raise", "StepFailed"]``), and the tags of the
steps it requested: the trace the model predicts and the real run is checked against.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any, Protocol

from .program import LEAF_OPS, Program, Stmt

Outcome = list[Any]


class Vocabulary(Protocol):
    """How to build each request, which exceptions the requests raise, where observations go."""

    #: "DeadlineExceeded" (a Cancelled: first, so that a raise is named by it), "StepFailed", "ChildFailed", "Cancelled"
    errors: dict[str, type[BaseException]]

    def step(self, stmt: Stmt, tag: str) -> Any: ...
    def sleep(self, seconds: int) -> Any: ...
    def wait(self, name: str, timeout: int | None) -> Any: ...
    def wait_update(self, name: str, timeout: int | None, default: Any) -> Any: ...
    def answer(self, request: Any, verdict: str, text: str) -> Any: ...
    def update_id(self, value: Any) -> str | None: ...  # the id of an update request, None for anything else
    def plain(self, value: Any) -> Any: ...  # a yield's value as JSON data: an update request as a list
    def child(self, program: Program, scope: str, timeout: int | None) -> Any: ...
    def all_of(self, leaves: list[Any]) -> Any: ...
    def any_of(self, leaves: list[Any]) -> Any: ...
    def patched(self, change: str) -> Any: ...
    def set_state(self, value: str) -> Any: ...
    def info(self) -> list[Any]: ...
    def continue_as_new(self, program: Program, scope: str, gen: int) -> Any: ...
    def observe(self, scope: str, gen: int, index: int, outcome: Outcome, steps: list[str]) -> None: ...


class _Return(Exception):
    """A ``return`` statement: unwinds through handlers (which do not catch it) and finally blocks."""


def walk(program: Program, scope: str, gen: int, vocabulary: Vocabulary) -> Generator[Any, Any, dict[str, Any]]:
    """Run ``program`` as the run named ``scope`` in generation ``gen``; return its trace."""
    walker = _Walker(program, scope, gen, vocabulary)
    with contextlib.suppress(_Return):
        yield from walker.block(program["body"])
    return {"scope": scope, "gen": gen, "trace": walker.trace}


def tag(scope: str, gen: int, node: int, count: int) -> str:
    """The name of the ``count``-th execution of statement ``node`` in this run and generation."""
    return f"{scope}.{gen}:{node}#{count}"


class _Walker:
    def __init__(self, program: Program, scope: str, gen: int, vocabulary: Vocabulary) -> None:
        self.program = program
        self.scope = scope
        self.gen = gen
        self.vocabulary = vocabulary
        self.index = 0
        self.counts: dict[int, int] = {}
        self.trace: list[Outcome] = []
        self.steps: list[str] = []  # tags of the steps in the request being built
        self.requests: dict[int, Any] = {}  # update statement id -> what it took last
        self.answered: set[str] = set()  # update ids answered in this generation

    def block(self, body: list[Stmt]) -> Generator[Any, Any, None]:
        for stmt in body:
            yield from self.stmt(stmt)

    def stmt(self, stmt: Stmt) -> Generator[Any, Any, None]:
        op, vocabulary = stmt["op"], self.vocabulary
        if op in LEAF_OPS:
            value = yield from self.request(self.leaf(stmt))
            if op == "update":
                self.requests[stmt["id"]] = value
        elif op in ("all_of", "any_of"):
            leaves = [self.leaf(leaf) for leaf in stmt["leaves"]]
            value = yield from self.request(vocabulary.all_of(leaves) if op == "all_of" else vocabulary.any_of(leaves))
            for position, leaf in enumerate(stmt["leaves"]):
                if leaf["op"] == "update" and op == "all_of":
                    self.requests[leaf["id"]] = value[position]
                elif leaf["op"] == "update":  # an any_of: what the winner took, or nothing
                    self.requests[leaf["id"]] = value[1] if value[0] == position else None
        elif op == "answer":
            yield from self.answer(stmt)
        elif op == "patched":
            taken = yield from self.request(vocabulary.patched(f"p{stmt['id']}"))
            yield from self.block(stmt["then"] if taken else stmt["else"])
        elif op == "state":
            yield from self.request(vocabulary.set_state(f"{self.scope}|{self.gen}|{self.index}"))
        elif op == "info":  # read without a yield: numbered like one, so both sides trace it at the same index
            self.index += 1
            self.record(self.index - 1, ["info", vocabulary.info()], [])
        elif op == "try":
            caught = tuple(vocabulary.errors[kind] for kind in stmt["catch"])
            try:
                yield from self.block(stmt["body"])
            except caught:
                yield from self.block(stmt["handler"])
                if stmt["reraise"]:
                    raise
        elif op == "finally":
            try:
                yield from self.block(stmt["body"])
            except GeneratorExit:  # the generator is being discarded (cache eviction): request nothing
                raise
            except BaseException:
                yield from self.block(stmt["cleanup"])
                raise
            yield from self.block(stmt["cleanup"])
        elif op == "loop":
            for _ in range(stmt["times"]):
                yield from self.block(stmt["body"])
        elif op == "continue":
            if self.gen < self.program.get("max_gen", 0):
                yield from self.request(vocabulary.continue_as_new(self.program, self.scope, self.gen + 1))
        elif op == "return":
            raise _Return()
        else:
            raise ValueError(f"unknown statement {stmt!r}")

    def leaf(self, stmt: Stmt) -> Any:
        op, vocabulary = stmt["op"], self.vocabulary
        if op == "step":
            self.steps.append(self.next_tag(stmt["id"]))
            return vocabulary.step(stmt, self.steps[-1])
        if op == "sleep":
            return vocabulary.sleep(stmt["seconds"])
        if op == "wait":
            return vocabulary.wait(stmt["name"], stmt["timeout"])
        if op == "update":
            return vocabulary.wait_update(stmt["name"], stmt["timeout"], stmt["default"])
        if op == "child":
            return vocabulary.child(stmt["program"], self.next_tag(stmt["id"]), stmt.get("timeout"))
        raise ValueError(f"not a leaf: {stmt!r}")

    def answer(self, stmt: Stmt) -> Generator[Any, Any, None]:
        """Reply to (or reject) what the update statement ``of`` took, unless it took nothing or it is answered."""
        request = self.requests.get(stmt["of"])
        update_id = self.vocabulary.update_id(request)
        if update_id is None or update_id in self.answered:
            return
        self.answered.add(update_id)
        text = f"{stmt['verdict']} {self.scope}|{self.gen}|{self.index}"
        yield from self.request(self.vocabulary.answer(request, stmt["verdict"], text))

    def next_tag(self, node: int) -> str:
        count = self.counts.get(node, 0)
        self.counts[node] = count + 1
        return tag(self.scope, self.gen, node, count)

    def request(self, request: Any) -> Generator[Any, Any, Any]:
        index, steps = self.index, self.steps
        self.index, self.steps = index + 1, []
        errors = tuple(self.vocabulary.errors.values())
        try:
            value = yield request
        except errors as error:
            kind = next(name for name, cls in self.vocabulary.errors.items() if isinstance(error, cls))
            self.record(index, ["raise", kind], steps)
            raise
        self.record(index, ["value", self.vocabulary.plain(value)], steps)
        return value

    def record(self, index: int, outcome: Outcome, steps: list[str]) -> None:
        self.trace.append(outcome)
        self.vocabulary.observe(self.scope, self.gen, index, outcome, steps)
