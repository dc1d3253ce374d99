"""Runs in the Django admin: a list to find them, a page to read one, actions to mend it.

Nothing about a run can be added, edited or deleted here: a run changes only through the
library's public functions, which the actions call, each behind its own permission.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

import durable_django as durable

from ..core.requests import Kind
from ..models import HistoryEntry, WorkflowRun
from . import display
from .schedules import ScheduleAdmin
from .subjects import WorkflowRunsMixin
from .views import RunViews

__all__ = ["ScheduleAdmin", "WorkflowRunAdmin", "WorkflowRunsMixin"]

Status = WorkflowRun.Status

#: At most this many refusals are named in a bulk action's message.
_NAMED = 5
#: A search for runs by attribute: ``customer=42``, ``address__city=Oslo``.
_ATTRIBUTE = re.compile(r"(?P<key>[A-Za-z_]\w*(?:__\w+)*)=(?P<value>.+)")


def _status_counts(request: HttpRequest) -> dict[str, Any]:
    """How many runs each status has (one query, over all runs), each a link that filters by it."""
    counts = dict(WorkflowRun.objects.order_by().values_list("status").annotate(Count("pk")))
    others = request.GET.copy()
    for key in ("status__exact", "p"):  # a new filter starts on the first page
        others.pop(key, None)
    chips = []
    for value, label in Status.choices:
        query = others.copy()
        query["status__exact"] = value
        selected = request.GET.get("status__exact") == value
        count = counts.get(value, 0)
        chips.append(
            {"status": value, "label": label, "count": count, "selected": selected, "query": f"?{query.urlencode()}"}
        )
    return {"status_counts": chips, "total_count": sum(counts.values()), "all_query": f"?{others.urlencode()}"}


@admin.register(WorkflowRun)
class WorkflowRunAdmin(RunViews):
    # The workflow's name sits under its id, which keeps the table narrow beside the filters.
    list_display = ("run", "status_badge", "started", "duration", "current_step", "attempts")
    list_filter = ("status", "workflow_name")
    search_fields = ("workflow_id",)
    search_help_text = "A workflow id (or part of one), a run id, or an attribute: customer=42."
    list_per_page = 50
    actions = ["cancel_runs", "retry_runs"]
    change_form_template = "admin/durable_django/workflowrun/change_form.html"
    change_list_template = "admin/durable_django/workflowrun/change_list.html"
    # The run page lays the run out itself; the form behind it is never shown or saved.
    fields = readonly_fields = ("workflow_id",)

    class Media:
        css = {"all": ["durable_django/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: WorkflowRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WorkflowRun | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowRun]:
        # The newest top-level history entry of each run, as subqueries: one query for the page.
        latest = HistoryEntry.objects.positions().filter(run=OuterRef("pk")).order_by("-seq")
        columns = ("seq", "kind", "name", "attempts")
        current = {f"current_{column}": Subquery(latest.values(column)[:1]) for column in columns}
        return super().get_queryset(request).annotate(**current)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WorkflowRun], search_term: str
    ) -> tuple[QuerySet[WorkflowRun], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(workflow_id__icontains=term)
        with suppress(ValueError):
            match |= Q(pk=uuid.UUID(term))
        attribute = _ATTRIBUTE.fullmatch(term)
        if attribute is not None:  # "customer=42": a JSON scalar, else the text itself
            try:
                value = json.loads(attribute["value"])
            except ValueError:
                value = attribute["value"]
            if value is None or isinstance(value, str | int | float | bool):
                match |= Q(**{f"attributes__{attribute['key']}": value})
        return queryset.filter(match), False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {"title": "Workflow runs", **_status_counts(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, run: WorkflowRun) -> str:
        badge = format_html(
            '<span class="durable-status durable-status-{}">{}</span>', run.status, run.get_status_display()
        )
        if run.cancel_requested_at is not None and run.status in WorkflowRun.LIVE:
            return format_html('{} <span class="durable-quiet">{}</span>', badge, "cancelling")
        return badge

    @admin.display(description=_("workflow id and name"), ordering="workflow_id")
    def run(self, run: WorkflowRun) -> str:
        return format_html('{}<br><span class="durable-quiet">{}</span>', run.workflow_id, run.workflow_name)

    @admin.display(description=_("started"), ordering="created_at")
    def started(self, run: WorkflowRun) -> str:
        when = timezone.localtime(run.created_at)
        today = when.date() == timezone.localdate()
        return format_html(
            '<time datetime="{}" title="{}">{}</time>',
            when.isoformat(),
            date_format(when, "DATETIME_FORMAT"),
            date_format(when, "H:i:s" if today else "M j, H:i"),
        )

    @admin.display(description=_("duration"))
    def duration(self, run: WorkflowRun) -> str:
        if run.finished_at is not None:
            return display.duration(run.finished_at - run.created_at)
        return format_html(
            '<span class="durable-quiet">{} so far</span>', display.duration(timezone.now() - run.created_at)
        )

    @admin.display(description=_("current step"), ordering="current_seq")
    def current_step(self, run: WorkflowRun) -> str | None:
        seq: int | None = getattr(run, "current_seq", None)
        if seq is None or run.status == Status.COMPLETED:
            return None
        return format_html(
            '<span class="durable-seq">#{}</span> {} <code>{}</code>',
            seq,
            getattr(run, "current_kind", ""),
            getattr(run, "current_name", ""),
        )

    @admin.display(description=_("attempts"), ordering="current_attempts")
    def attempts(self, run: WorkflowRun) -> int | None:
        if getattr(run, "current_kind", None) != Kind.STEP or run.status == Status.COMPLETED:
            return None
        attempts: int = getattr(run, "current_attempts", 0)
        return attempts

    def _each(
        self, request: HttpRequest, runs: QuerySet[WorkflowRun], perform: Callable[[WorkflowRun], None], done: str
    ) -> None:
        """Apply ``perform`` to each run; report how many it was done to and why the others were refused."""
        count, refused = 0, []
        for run in runs:
            try:
                perform(run)
            except durable.DurableError as error:
                refused.append(str(error))
            else:
                count += 1
        if count:
            self.message_user(request, f"{count} run{'s' * (count != 1)} {done}.", messages.SUCCESS)
        if refused:
            named = " ".join(refused[:_NAMED]) + (
                f" (and {len(refused) - _NAMED} more)" if len(refused) > _NAMED else ""
            )
            self.message_user(request, f"{len(refused)} refused: {named}", messages.WARNING)

    @admin.action(description=_("Cancel selected runs"), permissions=["cancel"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        self._each(request, queryset, durable.cancel, "cancelled, or asked to cancel at their current yield")

    @admin.action(description=_("Retry selected failed or blocked runs"), permissions=["retry"])
    def retry_runs(self, request: HttpRequest, queryset: QuerySet[WorkflowRun]) -> None:
        self._each(request, queryset, durable.retry, "retrying")
