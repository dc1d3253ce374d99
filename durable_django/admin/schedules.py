"""Schedules in the Django admin: see when each fires next, pause, resume, trigger, edit and delete.

Each action has a permission: Django's add, change and delete, plus
``durable_django.pause_schedule`` (pause and resume) and ``durable_django.trigger_schedule``.
A schedule declared in code is changed in code: its settings are read-only here, and it can
be deleted (alone or in a bulk delete) only once the code no longer declares it, else the
next worker to start would write it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from ..exceptions import InvalidSchedule
from ..models import Schedule
from ..store import schedules
from ..store.schedules import cadence_of
from .schedule_form import ScheduleForm

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[Schedule]
else:
    _Base = admin.ModelAdmin

__all__ = ["ScheduleAdmin"]

_SETTINGS = ("name", "workflow_name", "cron", "timezone", "every", "overlap", "catch_up", "jitter")


def _in_code(schedule: Schedule | None) -> bool:
    """Declared by the code the workers run: the code owns its settings."""
    return schedule is not None and schedule.source == Schedule.Source.CODE and not schedule.missing_from_code


@admin.register(Schedule)
class ScheduleAdmin(_Base):
    form = ScheduleForm
    list_display = ("name", "workflow_name", "when", "next_fire", "state", "last", "note")
    list_filter = ("paused", "source", "missing_from_code", "workflow_name")
    search_fields = ("name", "workflow_name")
    actions = ["pause_schedules", "resume_schedules", "trigger_schedules"]
    readonly_fields = ("source", "next_fire", "last", "note")

    class Media:
        css = {"all": ["durable_django/admin.css"]}

    def can(self, request: HttpRequest, action: str) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename(action, self.opts)}")

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return self.can(request, "pause")

    def has_trigger_permission(self, request: HttpRequest) -> bool:
        return self.can(request, "trigger")

    def has_delete_permission(self, request: HttpRequest, obj: Schedule | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not _in_code(obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Schedule | None = None) -> tuple[str, ...]:
        if _in_code(obj):
            return (*self.readonly_fields, *_SETTINGS, "args_json")
        return self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: Schedule | None = None) -> tuple[str, ...]:
        if _in_code(obj):
            return (*_SETTINGS, "args_json", "paused", "source", "next_fire", "last", "note")
        editable = (*_SETTINGS[:2], "args", "kwargs", *_SETTINGS[2:], "paused")
        return editable if obj is None else (*editable, "source", "next_fire", "last", "note")

    def get_form(self, request: HttpRequest, obj: Schedule | None = None, change: bool = False, **kwargs: Any) -> Any:
        if _in_code(obj):  # only "paused" is editable: a plain form, not the checks of a new definition
            kwargs["form"] = ModelForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        timing = {"cron", "every", "timezone", "jitter", "paused"}
        super().save_model(request, obj, form, change)
        if not change or timing & set(form.changed_data):
            schedules.reschedule(obj)  # count the ticks from now: nothing missed fires

    @admin.display(description=_("when"))
    def when(self, schedule: Schedule) -> str:
        try:
            return cadence_of(schedule).describe()
        except InvalidSchedule as error:
            return f"invalid: {error}"

    @admin.display(description=_("next tick"), ordering="fire_at")
    def next_fire(self, schedule: Schedule) -> str:
        if schedule.fire_at is None or schedule.paused or schedule.missing_from_code:
            return "—"
        when = timezone.localtime(schedule.fire_at)
        return format_html('<time datetime="{}">{}</time>', when.isoformat(), when.strftime("%Y-%m-%d %H:%M:%S %Z"))

    @admin.display(description=_("state"))
    def state(self, schedule: Schedule) -> str:
        if schedule.missing_from_code:
            label, css = "not in code", "blocked"
        elif schedule.paused:
            label, css = "paused", "waiting"
        else:
            label, css = "active", "completed"
        return format_html('<span class="durable-status durable-status-{}">{}</span>', css, label)

    @admin.display(description=_("last run"))
    def last(self, schedule: Schedule) -> str:
        runs = reverse(f"{self.admin_site.name}:durable_django_workflowrun_changelist")
        every = format_html('<a href="{}?{}">all runs</a>', runs, urlencode({"q": f"{schedule.name}@"}))
        run = schedule.last_run
        if run is None:
            return every
        page = reverse(f"{self.admin_site.name}:durable_django_workflowrun_change", args=[quote(run.pk)])
        return format_html('<a href="{}">{}</a> ({}) · {}', page, run.workflow_id, run.status, every)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        return super().get_queryset(request).select_related("last_run")

    def _each(self, request: HttpRequest, queryset: QuerySet[Schedule], verb: str) -> None:
        done = []
        for schedule in queryset:
            if verb == "trigger":
                run = schedules.trigger(schedule)
                done.append(
                    f"{schedule.name}: started {run.workflow_id}" if run else f"{schedule.name}: {schedule.note}"
                )
            else:
                getattr(schedules, verb)(schedule)
                done.append(schedule.name)
        self.message_user(request, f"{verb.capitalize()}: {'; '.join(done)}.", messages.SUCCESS)

    @admin.action(description=_("Pause selected schedules"), permissions=["pause"])
    def pause_schedules(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        self._each(request, queryset, "pause")

    @admin.action(description=_("Resume selected schedules (from their next tick after now)"), permissions=["pause"])
    def resume_schedules(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        self._each(request, queryset, "resume")

    @admin.action(description=_("Start the selected schedules' workflows now"), permissions=["trigger"])
    def trigger_schedules(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        self._each(request, queryset, "trigger")
