"""Make a failing case smaller while it still fails: for ``make fuzz``, which has no Hypothesis to do it.

Greedy: try each simplification in turn (drop an event, drop a statement, replace a
compound statement by its body, make a step plain, a loop run once, fewer generations),
keep the first that still fails, start over; stop when none does or the budget is spent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from .model import Event
from .program import Program, Stmt

Case = tuple[Program, list[Event]]


def shrink(program: Program, events: list[Event], fails: Callable[[Program, list[Event]], bool], budget: int) -> Case:
    current: Case = (program, events)
    tries = 0
    progress = True
    while progress and tries < budget:
        progress = False
        for candidate in _candidates(*current):
            tries += 1
            if fails(*candidate):
                current, progress = candidate, True
                break
            if tries >= budget:
                break
    return current


def _candidates(program: Program, events: list[Event]) -> Iterator[Case]:
    for index in range(len(events)):
        yield program, events[:index] + events[index + 1 :]
    for edit in _edits(program):
        changed = copy.deepcopy(program)
        if edit(changed):
            yield changed, events


Edit = Callable[[Program], bool]


def _edits(program: Program) -> Iterator[Edit]:
    """Edits by position, each applied to a fresh copy of ``program`` (the positions are the same there)."""
    if program.get("max_gen"):
        yield _fewer_generations
    for path in _lists(program):
        size = len(_at(program, path))
        for index in range(size):
            yield _remove(path, index)
            yield _simplify(path, index)


def _fewer_generations(program: Program) -> bool:
    program["max_gen"] -= 1
    return True


def _lists(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every list of statements in ``node`` (bodies, handlers, leaves, children's programs)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("body", "handler", "cleanup", "then", "else", "leaves") and isinstance(value, list):
                yield (*path, key)
            yield from _lists(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _lists(value, (*path, index))


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def _remove(path: tuple[Any, ...], index: int) -> Edit:
    def edit(program: Program) -> bool:
        statements = _at(program, path)
        if path[-1] == "leaves" and len(statements) == 1:
            return False  # a group needs a leaf
        del statements[index]
        return True

    return edit


def _simplify(path: tuple[Any, ...], index: int) -> Edit:
    def edit(program: Program) -> bool:
        statements = _at(program, path)
        stmt: Stmt = statements[index]
        op = stmt["op"]
        if op in ("try", "finally", "loop") and path[-1] != "leaves":
            statements[index : index + 1] = stmt["body"]
        elif op == "patched":
            statements[index : index + 1] = stmt["then"]
        elif op == "step" and (stmt["do"] != ["ok"] or stmt["policy"] != "once"):
            stmt.update(do=["ok"], policy="once")
        elif op == "wait" and stmt["timeout"] is not None:
            stmt["timeout"] = None
        else:
            return False
        return True

    return edit
