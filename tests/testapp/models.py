from django.db import models


class Counter(models.Model):
    name = models.CharField(max_length=64, unique=True)
    value = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
