"""Updates: commands sent to a run that wait for the workflow's reply."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from ..core import codec
from ..store.querysets import UpdateQuerySet
from .runs import WorkflowRun


class Update(models.Model):
    """A command sent with ``run.update()``; taken by one ``wait_update`` of the same name, oldest first.

    Answered once: ``reply_json`` for a reply, ``rejection`` for a rejection. A caller that
    retries with the same ``update_id`` gets the first answer: the row is never sent twice.
    """

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="updates")
    #: The caller's id of this update (a random UUID unless given): unique per run.
    update_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    payload_json = models.TextField()
    created_at = models.DateTimeField(db_default=Now())
    #: The history position of the ``wait_update`` that took it; null while it waits in the inbox.
    consumed_seq = models.PositiveIntegerField(null=True, blank=True)
    #: The workflow's ``reply(request, value)``, as JSON.
    reply_json = models.TextField(null=True, blank=True)
    #: The workflow's ``reject(request, reason)``.
    rejection = models.TextField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    objects = UpdateQuerySet.as_manager()

    class Meta:
        verbose_name = _("update")
        verbose_name_plural = _("updates")
        constraints = [models.UniqueConstraint(fields=["run", "update_id"], name="durable_update_run_id")]
        indexes = [
            models.Index(
                fields=["run", "name", "id"], name="durable_update_inbox", condition=models.Q(consumed_seq__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"update {self.name} ({self.update_id}) to {self.run_id}"

    @property
    def payload(self) -> Any:
        return codec.decode(self.payload_json)

    @property
    def reply(self) -> Any:
        """The workflow's reply, decoded; None before it answered (or if it rejected)."""
        return None if self.reply_json is None else codec.decode(self.reply_json)
