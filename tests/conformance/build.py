"""Write programs by hand, for the explicit tests: ``program(any_of(wait("a"), wait("b")), wait("b"))``.

Ids are given in the order the statements are built, so every statement of one program
gets its own (start a program with :func:`fresh` when ids matter).
"""

from __future__ import annotations

import itertools
from typing import Any

from .program import Program, Stmt

_ids = itertools.count(1)


def fresh() -> None:
    global _ids
    _ids = itertools.count(1)


def _id() -> int:
    return next(_ids)


def program(*body: Stmt, max_gen: int = 0, timeout: int | None = None) -> Program:
    built: Program = {"body": list(body), "max_gen": max_gen}
    if timeout is not None:
        built["timeout"] = timeout
    return built


def step(*do: Any, kind: str = "external", policy: str = "quick") -> Stmt:
    return {"op": "step", "id": _id(), "kind": kind, "policy": policy, "do": list(do) or ["ok"]}


def sleep(seconds: int) -> Stmt:
    return {"op": "sleep", "id": _id(), "seconds": seconds}


def wait(name: str, timeout: int | None = None) -> Stmt:
    return {"op": "wait", "id": _id(), "name": name, "timeout": timeout}


def wait_update(name: str, timeout: int | None = None, default: Any = None) -> Stmt:
    return {"op": "update", "id": _id(), "name": name, "timeout": timeout, "default": default}


def reply(wait: Stmt) -> Stmt:
    return {"op": "answer", "id": _id(), "of": wait["id"], "verdict": "reply"}


def reject(wait: Stmt) -> Stmt:
    return {"op": "answer", "id": _id(), "of": wait["id"], "verdict": "reject"}


def child(body: Program, timeout: int | None = None) -> Stmt:
    stmt: Stmt = {"op": "child", "id": _id(), "program": body}
    if timeout is not None:
        stmt["timeout"] = timeout
    return stmt


def all_of(*leaves: Stmt) -> Stmt:
    return {"op": "all_of", "id": _id(), "leaves": list(leaves)}


def any_of(*leaves: Stmt) -> Stmt:
    return {"op": "any_of", "id": _id(), "leaves": list(leaves)}


def try_(body: list[Stmt], catch: list[str], handler: list[Stmt], reraise: bool = False) -> Stmt:
    return {"op": "try", "id": _id(), "body": body, "catch": catch, "handler": handler, "reraise": reraise}


def finally_(body: list[Stmt], cleanup: list[Stmt]) -> Stmt:
    return {"op": "finally", "id": _id(), "body": body, "cleanup": cleanup}


def loop(times: int, *body: Stmt) -> Stmt:
    return {"op": "loop", "id": _id(), "times": times, "body": list(body)}


def state() -> Stmt:
    return {"op": "state", "id": _id()}


def info() -> Stmt:
    return {"op": "info", "id": _id()}


def continue_as_new() -> Stmt:
    return {"op": "continue", "id": _id()}


def signals(*pairs: tuple[str, Any], to: str = "", late: int = 0) -> dict[str, Any]:
    """One event: these signals sent one after the other, before the run is worked.

    ``late``: that much time passes before a worker looks at them (timers come due first).
    """
    event: dict[str, Any] = {"ev": "signal", "to": to, "signals": [list(pair) for pair in pairs]}
    if late:
        event["late"] = late
    return event


def update(name: str, payload: Any, update_id: str, to: str = "") -> dict[str, Any]:
    """One event: a caller sends update ``name`` with this id (the same id again: a retried call)."""
    return {"ev": "update", "to": to, "name": name, "payload": payload, "id": update_id}


def time(seconds: int) -> dict[str, Any]:
    return {"ev": "time", "seconds": seconds}


def cancel(to: str = "") -> dict[str, Any]:
    return {"ev": "cancel", "to": to}
