"""Which step attempts a SIGKILL lost, read from the journal, so the model can account for them.

An attempt whose worker dies before its outcome is recorded counts as an attempt, and the
next one starts at once (the dead owner's lease is reclaimed), with no backoff; after the
last one the step fails (``WorkerLost``, on a claim that runs no body). That is the
model's input ``lost``: each lost attempt, and whether its body ran before the kill.

From the journal, attempt ``n`` of a step was lost after its body ran when:

- it has a ``start`` and no ``end`` (killed while running);
- it ended well and a later attempt ran, or none did and the yield that requested the
  step raised ``StepFailed`` (its result was never recorded);
- it failed and a later attempt ran although the policy would not retry after this
  failure (fatal, or the last attempt), or would retry only after a backoff, yet the next
  attempt that ran started in the same epoch (a number the driver moves on with every
  event and every clock step: a recorded failure waits for time to pass).

It was lost before its body ran (killed between its claim and its first line) when
attempt ``n`` never started but a later one did, or when the step's yield raised
``StepFailed`` without a final failure of its own: every attempt after the last one
that started was claimed and lost.
"""

from __future__ import annotations

from typing import Any

from .journal import committed_yields
from .model_runs import Lost
from .program import POLICIES, Program, all_statements

Stamped = tuple[int, dict[str, Any]]  # (epoch, journal record)


def lost_attempts(stamped: list[Stamped], program: Program) -> Lost:
    policies = {stmt["id"]: stmt["policy"] for stmt in all_statements(program) if stmt["op"] == "step"}
    starts: dict[tuple[str, int], int] = {}
    ends: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}
    raised: dict[str, bool] = {}  # step tag -> did its yield (as committed) raise StepFailed
    for record in committed_yields([record for _, record in stamped]).values():
        for tag in record["steps"]:
            raised[tag] = record["o"] == ["raise", "StepFailed"]
    for epoch, record in stamped:
        if record.get("t") == "attempt":
            key = (record["tag"], record["n"])
            if record["phase"] == "start":
                starts.setdefault(key, epoch)
            else:
                ends.setdefault(key, (epoch, record))
    lost: dict[tuple[str, int], bool] = {}
    for tag, number in starts:
        if _lost_after_it_ran(tag, number, starts, ends, raised):
            lost[(tag, number)] = True
    for tag in {tag for tag, _ in starts} | set(raised):
        policy = POLICIES[policies[int(tag.rsplit(":", 1)[1].split("#")[0])]]
        top = max((number for name, number in starts if name == tag), default=0)
        for number in range(1, top):
            if (tag, number) not in starts:
                lost[(tag, number)] = False
        end = ends[(tag, top)][1] if (tag, top) in ends and (tag, top) not in lost else None
        final_failure = end is not None and not end["ok"] and (end["fatal"] or top >= policy.max_attempts)
        if raised.get(tag) and not final_failure:
            for number in range(top + 1, policy.max_attempts + 1):
                lost[(tag, number)] = False
    return lost


def _lost_after_it_ran(
    tag: str,
    number: int,
    starts: dict[tuple[str, int], int],
    ends: dict[tuple[str, int], tuple[int, dict[str, Any]]],
    raised: dict[str, bool],
) -> bool:
    if (tag, number) not in ends:
        return True
    ended_at, end = ends[(tag, number)]
    # The next attempt that ran its body (the ones between, if any, were lost before theirs).
    following = min((later for name, later in starts if name == tag and later > number), default=None)
    if following is None:
        return bool(end["ok"] and raised.get(tag))
    if end["ok"]:
        return True
    policy = POLICIES[end["policy"]]
    retried = not end["fatal"] and number < policy.max_attempts
    return not retried or (policy.delay_after(number) > 0 and starts[(tag, following)] == ended_at)
