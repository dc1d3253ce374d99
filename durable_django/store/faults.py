"""Faults a test can inject into this process: dying at a named place, or losing messages.

Named places where a test can make this process die, as a SIGKILL or an OOM kill would.

Inert unless the environment arms one: ``DURABLE_CRASH_AT`` names the point and
``DURABLE_CRASH_FILE`` a file whose removal is the ticket, so exactly one process
(of all the workers sharing the environment) dies there, once. Production never sets
them; an unarmed point costs one comparison.

``DURABLE_FAULT_PUBLISH`` (for example ``drop=0.1,duplicate=0.1``) makes that share of
wake-up messages vanish after the publisher thinks they went out, or go out twice, as a
lossy broker or a redelivery would.

Points: ``step.after_claim`` (lease taken, step not started), ``step.after_call`` (an
external step returned, its result not recorded), ``step.after_checkpoint`` (result
committed, the worker not done with the message), ``advance.before_commit`` (inside an
advance transaction), ``timers.mid_batch`` (a batch of due timers half fired, not
committed), ``publish.before`` (a transaction committed, its message not sent).
"""

from __future__ import annotations

import os
import random

__all__ = ["POINTS", "crash_point", "publish_copies"]

POINTS = (
    "step.after_claim",
    "step.after_call",
    "step.after_checkpoint",
    "advance.before_commit",
    "timers.mid_batch",
    "publish.before",
)
_ARMED = os.environ.get("DURABLE_CRASH_AT", "")
_TICKET = os.environ.get("DURABLE_CRASH_FILE", "")
_PUBLISH_FAULTS = {
    name: float(share)
    for name, _, share in (part.partition("=") for part in os.environ.get("DURABLE_FAULT_PUBLISH", "").split(","))
    if name in {"drop", "duplicate"}
}


def crash_point(name: str) -> None:
    if name != _ARMED or not _TICKET:
        return
    try:
        os.remove(_TICKET)  # only one process can remove it
    except FileNotFoundError:
        return
    os._exit(137)


def publish_copies() -> int:
    """How many copies of the next wake-up message to really send: normally 1."""
    if not _PUBLISH_FAULTS:
        return 1
    draw = random.random()
    drop = _PUBLISH_FAULTS.get("drop", 0.0)
    if draw < drop:
        return 0
    return 2 if draw < drop + _PUBLISH_FAULTS.get("duplicate", 0.0) else 1
