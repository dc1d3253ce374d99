"""Random programs, from any source of choices (Hypothesis, or a seeded ``random``).

Programs are drawn so that their outcome does not depend on the order in which work that
is due at the same moment happens to run (the documented semantics leave that order open):

- an ``any_of`` has at most one leaf that finishes by itself (a step, a child, or a timer
  of zero): two such leaves race, and which one wins is up to the workers;
- an ``all_of`` with more than one such leaf has only steps that succeed at once (with
  retries left over, so a killed attempt does not fail them): a failing leaf would cancel
  the others at a moment that depends on the order they run in.

Durations are whole minutes from half an hour up, so timers rarely fall within the
model's margin of each other (the model reports the cases that do, see ``model.MARGIN``).

An update wait is usually followed, later in its block, by an ``answer`` (a reply or a
rejection); sometimes by none, and an answer placed after a yield that a cancel interrupts
is never reached. Some runs get a deadline (the root's ``timeout``, a child's own).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from .program import ERROR_KINDS, LEAF_OPS, POLICIES, Program, Stmt, statements

T = TypeVar("T")
SIGNALS = ("a", "b", "c")
UPDATES = ("u", "v")  # "v" has a validator (program.refusal)


class Chooser(Protocol):
    def integer(self, low: int, high: int) -> int: ...
    def choice(self, options: Sequence[T]) -> T: ...


class RandomChooser:
    """Choices from a seeded ``random.Random``: ``make fuzz`` reproduces a run from its seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]


def chance(chooser: Chooser, percent: int) -> bool:
    return chooser.integer(0, 99) < percent


def weighted(chooser: Chooser, weights: dict[str, int]) -> str:
    """One key, with probability proportional to its weight (earlier keys are simpler: they shrink first)."""
    roll = chooser.integer(0, sum(weights.values()) - 1)
    for key, weight in weights.items():
        if roll < weight:
            return key
        roll -= weight
    raise AssertionError("unreachable")


class ProgramGenerator:
    def __init__(self, chooser: Chooser, budget: int = 16) -> None:
        self.c = chooser
        self.budget = budget  # statements left, children's included
        self.ids = 0

    def program(self, depth: int = 0) -> Program:
        max_gen = self.c.choice((0, 0, 0, 1, 2)) if depth < 2 else 0
        body = self.block(depth, self.c.integer(1, 5 if depth else 6), nest=0, max_gen=max_gen)
        if max_gen and not any(stmt["op"] == "continue" for stmt in statements(body)):
            body.insert(self.c.integer(0, len(body)), {"op": "continue", "id": self.new_id()})
        program: Program = {"body": body, "max_gen": max_gen}
        if depth == 0 and chance(self.c, 20):  # the root's deadline; a child's is on its statement
            program["timeout"] = self.c.integer(60, 4320) * 60
        return program

    def new_id(self) -> int:
        self.ids += 1
        return self.ids

    def block(self, depth: int, size: int, nest: int, max_gen: int) -> list[Stmt]:
        body = [self.stmt(depth, nest, max_gen) for _ in range(size)]
        return self.answers(body)

    def answers(self, body: list[Stmt]) -> list[Stmt]:
        """After each update wait of ``body`` (alone or in a group), mostly an answer somewhere later in it."""
        for stmt in list(body):
            leaves = [stmt] if stmt["op"] == "update" else stmt.get("leaves", [])
            waits = [leaf for leaf in leaves if leaf["op"] == "update"]
            for wait in waits:
                if chance(self.c, 80):
                    verdict = self.c.choice(("reply", "reply", "reject"))
                    answer = {"op": "answer", "id": self.new_id(), "of": wait["id"], "verdict": verdict}
                    body.insert(self.c.integer(body.index(stmt) + 1, len(body)), answer)
        return body

    def stmt(self, depth: int, nest: int, max_gen: int) -> Stmt:
        self.budget -= 1
        weights = {"step": 24, "wait": 18, "update": 12, "sleep": 8, "state": 4, "info": 3, "patched": 2, "return": 2}
        if depth < 2:
            weights["child"] = 6
        if self.budget > 0:
            weights.update({"group": 14, "try": 10, "finally": 6})
            if nest < 2:
                weights["loop"] = 6
        if max_gen:
            weights["continue"] = 3
        op = weighted(self.c, weights)
        if op in LEAF_OPS:
            return self.leaf(op, depth)
        if op == "group":
            return self.group(depth)
        stmt: Stmt = {"op": op, "id": self.new_id()}
        inner = nest + 1
        if op == "patched":
            stmt.update(then=self.block(depth, self.c.integer(0, 2), inner, max_gen), **{"else": []})
        elif op == "try":
            caught = [kind for kind in ERROR_KINDS if chance(self.c, 50)] or [self.c.choice(ERROR_KINDS)]
            stmt.update(
                body=self.block(depth, self.c.integer(1, 3), inner, max_gen),
                catch=caught,
                handler=self.block(depth, self.c.integer(0, 2), inner, max_gen),
                reraise=chance(self.c, 50),
            )
        elif op == "finally":
            stmt.update(
                body=self.block(depth, self.c.integer(1, 3), inner, max_gen),
                cleanup=self.block(depth, self.c.integer(1, 2), inner, max_gen),
            )
        elif op == "loop" and chance(self.c, 5):  # a long signal loop: more than one advance takes at once
            stmt.update(times=self.c.integer(101, 140), body=[self.leaf("wait", depth)])
        elif op == "loop":
            stmt.update(times=self.c.integer(1, 3), body=self.block(depth, self.c.integer(1, 3), inner, max_gen))
        return stmt

    def leaf(self, op: str, depth: int, standalone: bool = True) -> Stmt:
        stmt: Stmt = {"op": op, "id": self.new_id()}
        if op == "step":
            do = weighted(self.c, {"ok": 60, "flaky": 20, "fail": 12, "fatal": 8})
            stmt.update(
                kind=self.c.choice(("external", "atomic")),
                policy=self.c.choice(tuple(POLICIES)),
                do=["flaky", self.c.integer(1, 2)] if do == "flaky" else [do],
            )
            if standalone and stmt["kind"] == "external" and chance(self.c, 8):
                stmt["do"] = ["cancels", *stmt["do"]]
        elif op == "sleep":
            stmt["seconds"] = self.duration()
        elif op == "wait":
            timeout = self.duration() if chance(self.c, 50) else None
            stmt.update(name=self.c.choice(SIGNALS), timeout=timeout)
        elif op == "update":
            timeout = self.duration() if chance(self.c, 40) else None
            stmt.update(name=self.c.choice(UPDATES), timeout=timeout, default=self.c.choice((None, "no update")))
        else:
            stmt["program"] = self.program(depth + 1)
            if chance(self.c, 25):  # its own deadline, capped by its parent's
                stmt["timeout"] = self.c.integer(30, 2880) * 60
        return stmt

    def duration(self) -> int:
        """Half an hour to two days, in whole minutes; now and then zero (due at once)."""
        return 0 if chance(self.c, 4) else self.c.integer(30, 2880) * 60

    def group(self, depth: int) -> Stmt:
        kind = self.c.choice(("all_of", "any_of"))
        ops = ["step", "wait", "update", "sleep"] + (["child"] if depth < 2 else [])
        leaves = [self.leaf(self.c.choice(ops), depth, standalone=False) for _ in range(self.c.integer(1, 4))]
        return {"op": kind, "id": self.new_id(), "leaves": race_free(kind, leaves)}


def _finishes_by_itself(leaf: Stmt) -> bool:
    return leaf["op"] in ("step", "child") or leaf.get("seconds") == 0 or leaf.get("timeout") == 0


def race_free(kind: str, leaves: list[Stmt]) -> list[Stmt]:
    """Turn leaves whose order of finishing would be up to the workers into sleeps (see the module doc)."""
    active = [leaf for leaf in leaves if _finishes_by_itself(leaf)]
    if len(active) <= 1:
        return leaves
    keep = {active[0]["id"]} if kind == "any_of" else {leaf["id"] for leaf in active if leaf["op"] == "step"}
    if kind == "all_of":  # timers of zero cannot fail: they may stay beside the steps
        keep |= {leaf["id"] for leaf in active if leaf["op"] in ("sleep", "wait", "update")}
    fixed = []
    for leaf in leaves:
        if _finishes_by_itself(leaf) and leaf["id"] not in keep:
            leaf = {"op": "sleep", "id": leaf["id"], "seconds": 3600 + 60 * leaf["id"]}
        elif leaf["op"] == "step" and kind == "all_of":
            leaf = {**leaf, "do": ["ok"], "policy": "quick"}
        fixed.append(leaf)
    return fixed
