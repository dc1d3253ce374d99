"""The table both the durable atomic steps and the Celery chain tasks insert one row into."""

from django.db import models
from django.db.models.functions import Now


class Row(models.Model):
    """One insert per step or task; ``created_at`` (the database clock) dates a chain's last task.

    No secondary index, so the durable step and the Celery task do exactly the same write.
    """

    series = models.IntegerField()
    seq = models.IntegerField()
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.series}#{self.seq}"
