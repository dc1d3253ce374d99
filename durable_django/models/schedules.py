"""Schedules: cron and interval cadences that start runs, fired by the workers' sweepers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from ..core import codec
from ..core.schedules import Overlap as ScheduleOverlap
from ..store.querysets import ScheduleQuerySet
from .runs import WorkflowRun


class Schedule(models.Model):
    """A workflow started at every tick of a cron expression or an interval, by the workers' sweepers.

    ``next_tick_at`` is the next tick itself (it names the run); ``fire_at`` is when the
    database's clock makes it due (the tick plus its jitter). Only a sweeper holding the
    row's lock moves them, in the transaction that starts the tick's run.
    """

    class Overlap(models.TextChoices):
        """The core's ``Overlap`` values (``durable_django.core.schedules``)."""

        SKIP = ScheduleOverlap.SKIP.value, _("skip the tick")
        ALLOW = ScheduleOverlap.ALLOW.value, _("start anyway")
        CANCEL_PREVIOUS = ScheduleOverlap.CANCEL_PREVIOUS.value, _("cancel the previous run")

    class Source(models.TextChoices):
        CODE = "code", _("declared in code")
        ADMIN = "admin", _("made in the admin")

    name = models.CharField(max_length=200, unique=True)
    workflow_name = models.CharField(max_length=255)
    #: The workflow's arguments, ``{"args": [...], "kwargs": {...}}``.
    args_json = models.TextField(default='{"args":[],"kwargs":{}}')
    cron = models.CharField(max_length=255, blank=True, default="")
    every = models.DurationField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.SKIP)
    catch_up = models.PositiveIntegerField(default=1)
    jitter = models.DurationField(default=timedelta(0))
    paused = models.BooleanField(default=False)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)
    #: Declared in code once, no longer: it stops firing until it is declared again or deleted.
    missing_from_code = models.BooleanField(default=False)
    next_tick_at = models.DateTimeField(null=True, blank=True)
    fire_at = models.DateTimeField(null=True, blank=True)
    last_tick_at = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: What the last tick did besides starting a run: a skip, a cancel, dropped ticks, a refusal.
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        permissions = [
            ("pause_schedule", _("Can pause and resume schedules")),
            ("trigger_schedule", _("Can start a schedule's workflow now")),
        ]
        indexes = [
            models.Index(
                fields=["fire_at"],
                name="durable_schedule_due",
                condition=models.Q(paused=False, missing_from_code=False),
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def arguments(self) -> tuple[list[Any], dict[str, Any]]:
        """The workflow's ``(args, kwargs)``."""
        data = codec.decode(self.args_json)
        return data["args"], data["kwargs"]

    def pause(self) -> None:
        """Stop firing until :meth:`resume`; the ticks in between are not caught up."""
        from .. import schedules

        schedules.pause(self)

    def resume(self) -> None:
        """Fire again from the next tick after now."""
        from .. import schedules

        schedules.resume(self)

    def trigger(self) -> WorkflowRun | None:
        """Start the workflow now, outside the ticks, as the overlap policy allows; None if it skipped."""
        from .. import schedules

        return schedules.trigger(self)

    async def apause(self) -> None:
        """:meth:`pause` for async code; it commits on its own."""
        await sync_to_async(self.pause)()

    async def aresume(self) -> None:
        """:meth:`resume` for async code; it commits on its own."""
        await sync_to_async(self.resume)()

    async def atrigger(self) -> WorkflowRun | None:
        """:meth:`trigger` for async code; it commits on its own."""
        return await sync_to_async(self.trigger)()
