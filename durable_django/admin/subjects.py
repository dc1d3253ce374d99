"""A model's own runs on its change page: ``class OrderAdmin(WorkflowRunsMixin, admin.ModelAdmin)``.

Runs started with ``wf.using(subject=order)`` are listed in a "Workflow runs" section, newest
first, each linked to its timeline, with a link to all of them in the run list. The section
shows only to users who may view runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import models
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..models import WorkflowRun

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[Any]
else:
    _Base = object

__all__ = ["WorkflowRunsMixin"]

_FIELD = "workflow_runs"


class WorkflowRunsMixin(_Base):
    """Mix into a ``ModelAdmin``: the change page lists the object's workflow runs, linked to their timelines."""

    #: The most runs the section lists; the link below it leads to all of them.
    workflow_runs_limit = 20

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), _FIELD)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field for field in super().get_fields(request, obj) if field != _FIELD]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None or not request.user.has_perm(f"{WorkflowRun._meta.app_label}.view_workflowrun"):
            return fieldsets
        return [*fieldsets, ("Workflow runs", {"fields": [_FIELD], "classes": ["durable-runs-of"]})]

    @admin.display(description=_("Runs of this object"))
    def workflow_runs(self, obj: models.Model) -> SafeString | str:
        runs = list(WorkflowRun.objects.for_subject(obj).order_by("-created_at")[: self.workflow_runs_limit])
        if not runs:
            return "None yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}"><code>{}</code></a></td><td><code>{}</code></td>'
            '<td><span class="durable-status durable-status-{}">{}</span></td><td>{}</td></tr>',
            (
                (self._run_url(run), run.workflow_id, run.workflow_name, run.status, run.status, run.created_at)
                for run in runs
            ),
        )
        everything = self._list_url(obj)
        more = format_html('<p><a href="{}">All runs of this object</a></p>', everything) if everything else ""
        return format_html(
            "<table><thead><tr><th>Workflow id</th><th>Workflow</th><th>Status</th><th>Started</th></tr></thead>"
            "<tbody>{}</tbody></table>{}",
            rows,
            more,
        )

    def _run_url(self, run: WorkflowRun) -> str:
        try:
            return reverse(f"{self.admin_site.name}:durable_django_workflowrun_change", args=[quote(run.pk)])
        except NoReverseMatch:  # WorkflowRun is not on this admin site
            return ""

    def _list_url(self, obj: models.Model) -> str:
        try:
            changelist = reverse(f"{self.admin_site.name}:durable_django_workflowrun_changelist")
        except NoReverseMatch:
            return ""
        return f"{changelist}?{urlencode({'subject_type': obj._meta.label_lower, 'subject_id': str(obj.pk)})}"
