"""How replay tells a divergence from history, and the message that names both sides and the fix."""

from __future__ import annotations

from .decisions import Block, Recorded
from .requests import Group, Leaf, Reply, SetState, describe

__all__ = ["divergence", "ended_early", "mismatch", "same"]


def same(recorded: Recorded, request: Leaf | Group | SetState | Reply) -> bool:
    return (recorded.kind, recorded.name, recorded.args_json) == (request.kind, request.name, request.args_json)


def mismatch(
    workflow: str,
    seq: int,
    first: int,
    event: Leaf | Group,
    recorded: Recorded,
    leaves: tuple[Leaf, ...],
    entries: list[Recorded | None],
) -> Block | None:
    if not same(recorded, event):
        return Block(seq, divergence(workflow, seq, recorded, event))
    for index, (leaf, entry) in enumerate(zip(leaves, entries, strict=True)):
        if entry is None:
            message = f"Non-determinism in workflow {workflow!r}: the group at #{seq} has no entry #{first + index}."
            return Block(first + index, message)
        if not same(entry, leaf):
            return Block(first + index, divergence(workflow, first + index, entry, leaf))
    return None


def ended_early(workflow: str, seq: int, recorded: Recorded) -> str:
    return (
        f"Non-determinism in workflow {workflow!r} at position #{seq}: history recorded "
        f"{describe(recorded.kind, recorded.name, recorded.args_json)} but the code now ends there. "
        "Deploy the code that started this run, or branch with durable.patched(), then resume the run."
    )


def divergence(workflow: str, seq: int, recorded: Recorded, yielded: Leaf | Group | SetState | Reply) -> str:
    return (
        f"Non-determinism in workflow {workflow!r} at position #{seq}: history recorded "
        f"{describe(recorded.kind, recorded.name, recorded.args_json)} but the code now yields "
        f"{describe(yielded.kind, yielded.name, yielded.args_json)}. Deploy the code that started this run, "
        "or branch with durable.patched(), then resume the run."
    )
