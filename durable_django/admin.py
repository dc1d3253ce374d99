"""Runs in the Django admin: read-only, with each run's step history inline."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from .models import HistoryEntry, WorkflowRun


def _pretty(text: str | None) -> str:
    if text is None:
        return "-"
    return format_html(
        "<pre style='margin:0;white-space:pre-wrap'>{}</pre>",
        json.dumps(json.loads(text), indent=2, ensure_ascii=False),
    )


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class HistoryEntryInline(ReadOnly, admin.TabularInline):  # type: ignore[type-arg]
    model = HistoryEntry
    fk_name = "run"
    fields = (
        "seq",
        "kind",
        "name",
        "status",
        "attempts",
        "arguments",
        "outcome",
        "fire_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="arguments")
    def arguments(self, record: HistoryEntry) -> str:
        return _pretty(record.args_json)

    @admin.display(description="result or error")
    def outcome(self, record: HistoryEntry) -> str:
        return _pretty(record.error_json if record.status == HistoryEntry.Status.FAILED else record.result_json)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnly, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("workflow_id", "workflow_name", "status", "next_seq", "created_at", "finished_at")
    list_filter = ("status", "workflow_name")
    search_fields = ("=id", "workflow_id")
    fields = (
        "id",
        "workflow_id",
        "workflow_name",
        "status",
        "input",
        "result",
        "error",
        "state",
        "generation",
        "parent",
        "created_at",
        "updated_at",
        "finished_at",
    )
    readonly_fields = fields
    inlines = [HistoryEntryInline]

    @admin.display(description="input")
    def input(self, run: WorkflowRun) -> str:
        return _pretty(run.input_json)

    @admin.display(description="result")
    def result(self, run: WorkflowRun) -> str:
        return _pretty(run.result_json)

    @admin.display(description="state")
    def state(self, run: WorkflowRun) -> str:
        return _pretty(run.state_json)

    @admin.display(description="error")
    def error(self, run: WorkflowRun) -> str:
        return _pretty(run.error_json)
