"""Updates on the database side: sending one, a wait taking it, the workflow's answer and the caller's read of it.

An update waits in the run's inbox like a signal; ``wait_update`` takes the oldest of its
name. The answer (``reply`` or ``reject``) is written to the update's row in the advance that
records it, and on PostgreSQL a ``NOTIFY`` on the run's channel wakes the caller once that
advance commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Concat

from ..core import codec
from ..core.requests import Reply, UpdateRequest
from ..models import Update, WorkflowRun
from . import outbox
from .clock import Now

__all__ = ["Answer", "answer", "read_answer", "reject_unanswered", "send", "take", "waiting"]


def send(using: str, run_id: uuid.UUID, name: str, payload_json: str, update_id: str) -> None:
    """Put update ``update_id`` in the run's inbox and wake it, unless the run already has it (a retried call)."""
    updates = Update.objects.using(using)
    if updates.of(run_id).filter(update_id=update_id).exists():
        return
    try:
        with transaction.atomic(using=using):  # a savepoint: a concurrent retry may have sent it first
            updates.create(run_id=run_id, update_id=update_id, name=name, payload_json=payload_json)
    except IntegrityError:
        return
    outbox.wake(using, run_id)


def waiting(using: str, run_id: uuid.UUID, name: str) -> bool:
    """Whether an update ``name`` waits in the run's inbox."""
    return _inbox(using, run_id, name).exists()


def _inbox(using: str, run_id: uuid.UUID, name: str) -> QuerySet[Update]:
    return Update.objects.using(using).inbox(run_id, name)


def take(using: str, run_id: uuid.UUID, name: str, seq: int) -> str | None:
    """The oldest waiting update ``name``, taken by the wait at ``seq`` (as an ``UpdateRequest``'s JSON), or None."""
    row = _inbox(using, run_id, name).values_list("pk", "update_id", "payload_json").first()
    if row is None:
        return None
    pk, update_id, payload_json = row
    Update.objects.using(using).filter(pk=pk).update(consumed_seq=seq)
    return UpdateRequest(update_id, name, codec.decode(payload_json)).as_json()


def answer(using: str, run_id: uuid.UUID, reply: Reply) -> None:
    """Record the workflow's answer on the update's row and tell the caller (after commit)."""
    data = codec.decode(reply.args_json)
    fields: dict[str, Any] = {"answered_at": Now()}
    if "error" in data:
        fields["rejection"] = data["error"]
    else:
        fields["reply_json"] = codec.encode(data["value"])
    Update.objects.using(using).of(run_id).unanswered().filter(update_id=data["update_id"]).update(**fields)
    _tell_callers(using, run_id)


def reject_unanswered(using: str, run_id: uuid.UUID, generation: int) -> None:
    """Reject every update generation ``generation`` took and did not answer: it is continuing as new.

    The next generation starts from its first line and cannot answer what an earlier one
    received, so the callers would otherwise wait out their timeouts for nothing. Updates not
    taken yet stay in the inbox for the next generation, as signals do.
    """
    rejection = Concat(
        Value(f"the run continued as new (generation {generation + 1}) without answering update '"),
        F("name"),
        Value("'; send it again for the new generation to take"),
    )
    taken = Update.objects.using(using).of(run_id).taken().unanswered()
    if taken.update(rejection=rejection, answered_at=Now()):
        _tell_callers(using, run_id)


def _tell_callers(using: str, run_id: uuid.UUID) -> None:
    connection = connections[using]
    if connection.vendor == "postgresql":  # the waiting caller's LISTEN (durable_django.waiting.channel)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, 'update')", [f"durable_run_{run_id.hex}"])


@dataclass(frozen=True, slots=True)
class Answer:
    """What a caller waiting for an update reads: the answer if any, and whether the run has finished."""

    answered: bool
    reply_json: str | None
    rejection: str | None
    run_status: str

    @property
    def run_finished(self) -> bool:
        return self.run_status in WorkflowRun.FINISHED


def read_answer(using: str, run_id: uuid.UUID, update_id: str) -> Answer | None:
    """The update's answer and its run's status; None if the update (or the run) is gone."""
    row = (
        Update.objects.using(using)
        .of(run_id)
        .filter(update_id=update_id)
        .values_list("answered_at", "reply_json", "rejection", "run__status")
        .first()
    )
    if row is None:
        return None
    answered_at, reply_json, rejection, status = row
    return Answer(answered_at is not None, reply_json, rejection, status)
