"""Named places where a test can make this process die, as a SIGKILL or an OOM kill would.

Inert unless the environment arms one: ``DURABLE_CRASH_AT`` names the point and
``DURABLE_CRASH_FILE`` a file whose removal is the ticket, so exactly one process
(of all the workers sharing the environment) dies there, once. Production never sets
them; an unarmed point costs one comparison.

Points: ``step.after_claim`` (lease taken, step not started), ``step.after_call`` (an
external step returned, its result not recorded), ``step.after_checkpoint`` (result
committed, the worker not done with the message), ``advance.before_commit`` (inside an
advance transaction), ``publish.before`` (a transaction committed, its message not sent).
"""

from __future__ import annotations

import os

__all__ = ["POINTS", "crash_point"]

POINTS = ("step.after_claim", "step.after_call", "step.after_checkpoint", "advance.before_commit", "publish.before")
_ARMED = os.environ.get("DURABLE_CRASH_AT", "")
_TICKET = os.environ.get("DURABLE_CRASH_FILE", "")


def crash_point(name: str) -> None:
    if name != _ARMED or not _TICKET:
        return
    try:
        os.remove(_TICKET)  # only one process can remove it
    except FileNotFoundError:
        return
    os._exit(137)
