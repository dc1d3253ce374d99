"""Programs: workflows as plain JSON data, so a run's input can carry the program it runs.

A program is ``{"body": [statement, ...], "max_gen": int, "timeout": seconds or None}``
(``timeout``: the root run's deadline, ``wf.using(timeout=...)``). A statement is a dict whose
``"op"`` says what it is; every statement has an ``"id"``, unique in the whole program
(children included), which names what it does in step tags, child scopes and traces.

=========  ==================================================================================
op         fields and meaning
=========  ==================================================================================
step       ``kind`` ("external" | "atomic"), ``policy`` (a key of :data:`POLICIES`), ``do``:
           ``["ok"]``; ``["flaky", n]`` fails attempts 1..n; ``["fail"]`` fails every attempt;
           ``["fatal"]`` fails with a non-retryable error; ``["cancels", *behaviour]`` (external
           steps outside groups) cancels its own run while each attempt runs, then behaves.
           Yields the step; returns ``"<tag>@<attempt>"`` of the attempt that succeeded.
sleep      ``seconds``.
wait       ``name``, ``timeout`` (seconds or None): ``wait_signal``.
update     ``name``, ``timeout``, ``default``: ``wait_update``; the request it returns is kept
           (under the statement's id) for an ``answer``; traced as ``["update", id, name,
           payload]``, or ``default`` once the timeout passed.
answer     ``of`` (an update statement's id), ``verdict`` ("reply" | "reject"): answers the
           request that statement took last, if it took one this generation and it is not
           answered yet; otherwise nothing (no yield).
child      ``program``, ``timeout`` (seconds or None: the child's own deadline,
           ``other.using(timeout=...)``): a child workflow running that program.
all_of     ``leaves``: steps, sleeps, waits, update waits, children.
any_of     ``leaves``: as all_of.
patched    ``then``, ``else``: ``if (yield patched(...))``.
state      ``set_state`` of a value naming the run, generation and position.
info       ``durable.workflow_info()``: records ``[position, history_length, generation,
           workflow_id, parent's workflow_id, continue_as_new_suggested]`` in the trace without
           yielding (the position counts history entries: 1 per request, 1 + n for a group of n;
           ids are written with the root's id as ``~``, so ``~/3`` is the child at position 3).
try        ``body``, ``catch`` (a list of "DeadlineExceeded", "StepFailed", "ChildFailed", "Cancelled"),
           ``handler``, ``reraise``: ``try/except`` whose handler yields compensation.
finally    ``body``, ``cleanup``: ``try/finally`` whose cleanup yields.
loop       ``times``, ``body``: a loop bounded by a counter.
continue   ``continue_as_new`` with the generation + 1, while the generation is below
           ``max_gen`` (so every program ends); otherwise nothing.
return     return early.
=========  ==================================================================================

A run returns ``{"scope", "gen", "trace"}``: ``trace`` lists what each of its yields
returned (or the error it raised), so the result is built from every value it received.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Stmt = dict[str, Any]
Program = dict[str, Any]

LEAF_OPS = ("step", "sleep", "wait", "update", "child")
#: What a ``try`` can catch. DeadlineExceeded is a Cancelled: listed first, so a raise is named by it.
ERROR_KINDS = ("DeadlineExceeded", "StepFailed", "ChildFailed", "Cancelled")


#: The update name whose validator refuses some payloads (``workflows.py`` registers it).
VALIDATED = "v"


def refusal(state: Any, payload: Any) -> str | None:
    """Why the validator refuses update ``v`` with ``payload``, given the run's published state; None if it does not.

    A pure function of the state and the payload, as docs/updates.md asks of a validator. Which
    payloads are refused is data shared by both sides (like a step's behaviour); what a refusal
    does (nothing sent, ``UpdateRejected`` with this message) is the model's own.
    """
    if payload is None:
        return "v needs a payload"
    if isinstance(payload, int) and payload % 3 == 0 and state is not None:
        return f"v {payload} refused once a state is published"
    return None


@dataclass(frozen=True)
class Policy:
    """A retry policy as data: the engine's ``RetryPolicy`` and the model are both built from it."""

    max_attempts: int
    first_delay: int  # seconds before attempt 2
    coefficient: int  # each later wait is this many times the one before

    def delay_after(self, attempt: int) -> int:
        return int(self.first_delay * self.coefficient ** (attempt - 1))


#: The retry policies a step can name. "slow" waits long enough that an idle run's step
#: waits in backoff until time passes (real time never reaches 25 minutes in a test).
POLICIES = {
    "once": Policy(max_attempts=1, first_delay=0, coefficient=1),
    "quick": Policy(max_attempts=3, first_delay=0, coefficient=1),
    "slow": Policy(max_attempts=3, first_delay=1500, coefficient=2),
}


def statements(body: list[Stmt]) -> Iterator[Stmt]:
    """Every statement in ``body``, nested ones and group leaves included, children's programs not."""
    for stmt in body:
        yield stmt
        for key in ("body", "handler", "cleanup", "then", "else", "leaves"):
            yield from statements(stmt.get(key, []))


def all_statements(program: Program) -> Iterator[Stmt]:
    """Every statement of ``program`` and of its children's programs, recursively."""
    for stmt in statements(program["body"]):
        yield stmt
        if stmt["op"] == "child":
            yield from all_statements(stmt["program"])


def describe(program: Program, indent: str = "") -> str:
    """``program`` as readable pseudo-Python: how a failing case is printed."""
    lines = [f"{indent}# max_gen={program['max_gen']}"] if program.get("max_gen") else []
    if program.get("timeout") is not None:
        lines.append(f"{indent}# timeout={program['timeout']}s")
    lines += _block(program["body"], indent)
    return "\n".join(lines) if lines else f"{indent}pass"


def _block(body: list[Stmt], indent: str) -> list[str]:
    if not body:
        return [f"{indent}pass"]
    lines: list[str] = []
    for stmt in body:
        lines += _stmt(stmt, indent)
    return lines


def _stmt(stmt: Stmt, indent: str) -> list[str]:
    op, inner = stmt["op"], indent + "    "
    if op in LEAF_OPS:
        text = f"{indent}yield {leaf_text(stmt)}"
        return [text, describe(stmt["program"], inner)] if op == "child" else [text]
    if op in ("all_of", "any_of"):
        lines = [f"{indent}yield {op}(  # #{stmt['id']}"]
        for leaf in stmt["leaves"]:
            lines.append(f"{inner}{leaf_text(leaf)},")
            if leaf["op"] == "child":
                lines.append(describe(leaf["program"], inner + "    "))
        return [*lines, f"{indent})"]
    if op == "patched":
        return [
            f"{indent}if (yield patched('p{stmt['id']}')):",
            *_block(stmt["then"], inner),
            f"{indent}else:",
            *_block(stmt["else"], inner),
        ]
    if op == "try":
        caught = ", ".join(stmt["catch"])
        tail = [f"{inner}raise"] if stmt["reraise"] else []
        return [
            f"{indent}try:",
            *_block(stmt["body"], inner),
            f"{indent}except ({caught}):",
            *_block(stmt["handler"], inner),
            *tail,
        ]
    if op == "finally":
        return [f"{indent}try:", *_block(stmt["body"], inner), f"{indent}finally:", *_block(stmt["cleanup"], inner)]
    if op == "loop":
        return [f"{indent}for _ in range({stmt['times']}):", *_block(stmt["body"], inner)]
    if op == "state":
        return [f"{indent}yield set_state(...)  # #{stmt['id']}"]
    if op == "info":
        return [f"{indent}trace.append(workflow_info())  # #{stmt['id']}"]
    if op == "answer":
        return [f"{indent}yield {stmt['verdict']}(request_{stmt['of']}, ...)  # #{stmt['id']}, if taken and unanswered"]
    if op == "continue":
        return [f"{indent}yield continue_as_new(gen + 1)  # #{stmt['id']}, while gen < max_gen"]
    if op == "return":
        return [f"{indent}return trace"]
    raise ValueError(f"unknown statement {stmt!r}")


def leaf_text(stmt: Stmt) -> str:
    op = stmt["op"]
    if op == "step":
        return f"{stmt['kind']}_{stmt['policy']}({stmt['do']})  # #{stmt['id']}"
    if op == "sleep":
        return f"sleep({stmt['seconds']}s)  # #{stmt['id']}"
    if op == "wait":
        timeout = "" if stmt["timeout"] is None else f", timeout={stmt['timeout']}s"
        return f"wait_signal({stmt['name']!r}{timeout})  # #{stmt['id']}"
    if op == "update":
        timeout = "" if stmt["timeout"] is None else f", timeout={stmt['timeout']}s, default={stmt['default']!r}"
        return f"request_{stmt['id']} = wait_update({stmt['name']!r}{timeout})  # #{stmt['id']}"
    if op == "child":
        timeout = "" if stmt.get("timeout") is None else f".using(timeout={stmt['timeout']}s)"
        return f"child{timeout}()  # #{stmt['id']}, running:"
    raise ValueError(f"not a leaf: {stmt!r}")
