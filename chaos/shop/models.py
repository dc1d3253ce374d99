"""The shop's orders, the harness's signal receipts, and anomalies recorded by database triggers."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class Order(models.Model):
    """One order; its workflow_id is ``ref``. Each ``*_writes`` counts how often that atomic step's write landed."""

    class Status(models.TextChoices):
        NEW = "new"
        PAID = "paid"
        DECLINED = "declined"
        SHIPPED = "shipped"
        REFUNDED = "refunded"

    ref = models.CharField(max_length=64, unique=True)
    amount_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    charge_id = models.CharField(max_length=64, blank=True, default="")
    refund_id = models.CharField(max_length=64, blank=True, default="")
    refund_reason = models.CharField(max_length=32, blank=True, default="")
    #: The nonce of the signal that shipped the order.
    shipped_by = models.CharField(max_length=64, blank=True, default="")
    paid_writes = models.PositiveIntegerField(default=0)
    declined_writes = models.PositiveIntegerField(default=0)
    shipped_writes = models.PositiveIntegerField(default=0)
    refunded_writes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"order {self.ref} ({self.status})"


class SignalReceipt(models.Model):
    """Written in the same transaction as the signal it stands for: it exists iff that signal committed."""

    nonce = models.CharField(max_length=64, unique=True)
    ref = models.CharField(max_length=64, db_index=True)
    action = models.CharField(max_length=16)
    early = models.BooleanField(default=False)
    #: The database's clock read just after the commit returned (an upper bound of the commit time).
    committed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"signal {self.action} {self.nonce} to {self.ref}"


class Anomaly(models.Model):
    """A write that should never be accepted, recorded by a trigger in the writer's own transaction."""

    kind = models.CharField(max_length=32)
    row = models.CharField(max_length=128)
    detail = models.TextField()
    at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.kind} {self.row}"


class CleanupLog(models.Model):
    """One row each time a composed saga's cleanup step body commits (its idempotency key says which entry)."""

    ref = models.CharField(max_length=64, db_index=True)
    key = models.CharField(max_length=128)
    at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"cleanup of {self.ref} ({self.key})"
