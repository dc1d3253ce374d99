from django.db import models


class Order(models.Model):
    class Status(models.TextChoices):
        NEW = "new"
        PAID = "paid"
        SHIPPED = "shipped"
        REFUNDED = "refunded"

    amount_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    charge_id = models.CharField(max_length=64, blank=True, default="")
    carrier = models.CharField(max_length=64, blank=True, default="")
    refund_id = models.CharField(max_length=64, blank=True, default="")
    #: How many times mark_paid's write landed: 1 proves the atomic step ran exactly once.
    paid_writes = models.PositiveIntegerField(default=0)
    #: The same for mark_refunded: 1 on a refunded order, 0 on every other.
    refund_writes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"
