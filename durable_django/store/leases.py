"""Leases on work items: who may act on an item, until when, and with which fencing token.

Every time limit is computed from the database's clock, never a worker's.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import router
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now

from ..models import WorkflowRun, WorkItem, idempotency_key

__all__ = ["Claim", "claimable", "database", "db_now_plus", "fence", "lease_owner"]

#: This machine, as lease owners name it.
HOST = socket.gethostname()


def database() -> str:
    """The database alias durable_django writes to (the router decides, ``default`` otherwise)."""
    return router.db_for_write(WorkflowRun)


def db_now_plus(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    """The database's clock plus ``seconds``."""
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


def claimable() -> Q:
    """Due and unleased, or leased by someone whose lease ran out."""
    return Q(lease_expires_at__isnull=True, available_at__lte=Now()) | Q(lease_expires_at__lt=Now())


def lease_owner() -> str:
    """Who takes a lease: this process as ``host:pid`` (read at each claim: pool children fork)."""
    return f"{HOST}:{os.getpid()}"


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

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.run_id, self.generation, self.seq)


def fence(using: str, held: Claim) -> bool:
    """Delete the item if this process still holds its lease; False means a newer claim won."""
    return WorkItem.objects.using(using).filter(pk=held.item_id, token=held.token).delete()[0] == 1
