"""Leases on work items: who may act on an item, until when, and with which fencing token.

Every time limit is computed from the database's clock, never a worker's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import router

from ..models import WorkflowRun, WorkItem, idempotency_key
from . import owners
from .querysets import db_now_plus

__all__ = ["Claim", "database", "db_now_plus", "fence", "lease_owner"]


def database() -> str:
    """The database alias durable_django writes to (the router decides, ``default`` otherwise)."""
    return router.db_for_write(WorkflowRun)


def lease_owner() -> str:
    """Who takes a lease: this process, as :mod:`.owners` names it (read at each claim: pool children fork)."""
    return str(owners.current())


@dataclass(frozen=True, slots=True)
class Claim:
    """A step work item this process holds the lease on, with what it needs to run it."""

    item_id: int
    token: int
    run_id: uuid.UUID
    workflow_id: str
    generation: int
    seq: int
    step: str
    args_json: str
    attempt: int
    queue: str
    #: How long one lease lasts; extending it renews this much from now.
    lease_seconds: float
    #: What the step's last heartbeat reported (JSON), for this attempt to resume from.
    heartbeat_json: str | None = None

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.run_id, self.generation, self.seq)


def fence(using: str, held: Claim) -> bool:
    """Delete the item if this process still holds its lease; False means a newer claim won."""
    return WorkItem.objects.using(using).held(held.item_id, held.token).delete()[0] == 1
