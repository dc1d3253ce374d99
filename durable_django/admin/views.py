"""A run's page and the pages of its actions: cancel, retry, signal, fork, download.

Each action has one URL: GET shows what will happen (a confirmation or a form), POST does
it by calling the library's public function and comes back to the run with a message.
The library decides whether the run is in a state that allows it; its refusal is shown
as it is. Without the action's permission the page answers 403.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import django
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.text import slugify

import durable_django as durable

from ..core import codec
from ..core.registry import resolve_workflow
from ..core.requests import Kind
from ..models import WorkflowRun
from ..ops import replay
from ..task_names import TaskName
from . import display, timeline
from .forms import ForkForm, SignalForm
from .redaction import fragments, is_call, positional_names, redact, redact_call

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[WorkflowRun]
else:
    _Base = admin.ModelAdmin

__all__ = ["ACTIONS", "RunViews"]

Status = WorkflowRun.Status

#: The actions with a permission of their own: ``durable_django.<action>_workflowrun``.
ACTIONS = ("cancel", "retry", "signal", "fork")


class RunViews(_Base):
    """The run page's context and its action endpoints, each behind its own permission."""

    def can(self, request: HttpRequest, action: str) -> bool:
        """Whether the user holds ``durable_django.<action>_workflowrun``."""
        codename = get_permission_codename(action, self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    # Django's admin actions look these up by name (``@admin.action(permissions=[...])``).
    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return self.can(request, "cancel")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return self.can(request, "retry")

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        views = {**{action: getattr(self, f"{action}_view") for action in ACTIONS}, "history": self.history_json_view}
        own = [
            path(f"<path:object_id>/{name}/", self.admin_site.admin_view(view), name=f"{info}_{name}")
            for name, view in views.items()
        ]
        # Before Django's own, whose "<path:object_id>/" would take these paths.
        return own + super().get_urls()

    def url(self, run: WorkflowRun, name: str = "change") -> str:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return reverse(f"{self.admin_site.name}:{info}_{name}", args=[quote(run.pk)])

    def _run(self, request: HttpRequest, object_id: str, action: str | None) -> WorkflowRun:
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404(f"No workflow run with id {object_id!r}.")
        if not self.has_view_permission(request, run) or (action is not None and not self.can(request, action)):
            raise PermissionDenied
        return run

    def _page(self, request: HttpRequest, run: WorkflowRun, template: str, title: str, **context: Any) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "run": run,
            "original": run,
            "title": title,
            "run_url": self.url(run),
            "media": self.media,
            # Django 6.1 marks breadcrumbs up as a list (<ol class="breadcrumbs">, with its CSS); 6.0
            # still has <div class="breadcrumbs">. The action pages follow the admin's own pages.
            "breadcrumbs_list": django.VERSION >= (6, 1),
            **context,
        }
        return TemplateResponse(request, f"admin/durable_django/workflowrun/{template}", context)

    def _confirm(
        self,
        request: HttpRequest,
        object_id: str,
        action: str,
        perform: Callable[[WorkflowRun], str],
        **wording: str,
    ) -> HttpResponse:
        run = self._run(request, object_id, action)
        if request.method != "POST":
            return self._page(request, run, "confirm.html", wording.pop("title"), **wording)
        try:
            done = perform(run)
        except durable.DurableError as error:
            self.message_user(request, f"Not done: {error}", messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return redirect(self.url(run))

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(run: WorkflowRun) -> str:
            durable.cancel(run)
            run.refresh_from_db(fields=["status"])
            if run.status == Status.CANCELLED:
                return f"Run {run.workflow_id} is cancelled."
            return f"Run {run.workflow_id} will be cancelled at its current yield; its cleanup code runs first."

        return self._confirm(
            request,
            object_id,
            "cancel",
            perform,
            title="Cancel this run?",
            explain="The workflow gets durable.Cancelled at the yield it waits at, so its except and finally "
            "blocks can compensate. A blocked run is cancelled at once. This cannot be undone.",
            button="Yes, cancel the run",
            danger="yes",
        )

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        def perform(run: WorkflowRun) -> str:
            durable.retry(run)
            return f"Run {run.workflow_id} is retrying."

        return self._confirm(
            request,
            object_id,
            "retry",
            perform,
            title="Retry this run?",
            explain="A failed run runs its failing step again with fresh attempts, keeping what came before; "
            "a blocked run replays its history with the code deployed now.",
            button="Yes, retry the run",
        )

    def signal_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = self._run(request, object_id, "signal")
        form = SignalForm(run, request.POST if request.method == "POST" else None)
        if form.is_valid():
            name, payload = form.cleaned_data["name"], form.cleaned_data["payload"]
            try:
                durable.signal(run, name, payload)
            except durable.SerializationError as error:
                form.add_error("payload", str(error))
            except durable.DurableError as error:
                form.add_error(None, str(error))
            else:
                self.message_user(request, f"Signal {name!r} sent to run {run.workflow_id}.", messages.SUCCESS)
                return redirect(self.url(run))
        return self._page(request, run, "form.html", "Send a signal", form=form, button="Send signal")

    def fork_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = self._run(request, object_id, "fork")
        initial = {"from_seq": request.GET.get("seq", 0)}
        form = ForkForm(run, request.POST if request.method == "POST" else None, initial=initial)
        if form.is_valid():
            from_seq, workflow_id = form.cleaned_data["from_seq"], form.cleaned_data["workflow_id"]
            try:
                new = durable.fork(run, from_seq, workflow_id=workflow_id)
            except (durable.InvalidWorkflowId, durable.WorkflowIdConflict) as error:
                form.add_error("workflow_id", str(error))
            except durable.DurableError as error:
                form.add_error(None, str(error))
            else:
                done = f"Run {new.workflow_id} restarts {run.workflow_id} from #{from_seq}."
                self.message_user(request, done, messages.SUCCESS)
                return redirect(self.url(new))
        return self._page(request, run, "form.html", "Restart from a step", form=form, button="Start the new run")

    def history_json_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """``replay.export`` as a download; redacted unless the user may export secrets."""
        run = self._run(request, object_id, None)
        document = replay.export(run)
        if not self.can(request, "export_unredacted"):
            secrets = fragments()
            document["input"] = redact_call(document["input"], positional_names("workflow", run.workflow_name), secrets)
            for entry in document["history"]:
                kind = "step" if entry["kind"] == Kind.STEP else "workflow"
                names = positional_names(kind, entry["name"]) if entry["kind"] in {Kind.STEP, Kind.CHILD} else ()
                entry["args"] = redact_call(entry["args"], names, secrets)
                entry["result"] = redact(entry["result"], secrets)
                entry["error"] = redact(entry["error"], secrets)
            document["redacted"] = True
        response = JsonResponse(document, json_dumps_params={"indent": 2, "ensure_ascii": False})
        filename = f"{slugify(run.workflow_id) or run.pk}.history.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: WorkflowRun | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.run_context(request, obj), title=obj.workflow_id, subtitle=None)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def run_context(self, request: HttpRequest, run: WorkflowRun) -> dict[str, Any]:
        """Everything the run page shows, decoded and redacted."""
        secrets = fragments()
        live = run.status in WorkflowRun.LIVE
        end = run.finished_at or timezone.now()
        context: dict[str, Any] = {
            "run": run,
            "live": live,
            "duration": display.duration(end - run.created_at),
            "input": _input(run, secrets),
            "attributes": display.json_inline(run.attributes, secrets) if run.attributes else None,
            "subject_url": _subject_url(self.admin_site.name, run),
            "result": None if run.result_json is None else display.json_block(run.result, secrets),
            "error": None if run.error_json is None else redact(display.loads(run.error_json), secrets),
            "state": None if run.state_json is None else display.json_block(run.state, secrets),
            "timeline": timeline.build(run, secrets),
            "tools_in_content": django.VERSION < (6, 1),  # 6.1 puts object-tools beside the title
            "urls": {name: self.url(run, name) for name in (*ACTIONS, "history")},
            "allowed": {
                "cancel": self.can(request, "cancel")
                and (live or run.status == Status.BLOCKED)
                and run.cancel_requested_at is None,
                "retry": self.can(request, "retry") and run.status in (Status.FAILED, Status.BLOCKED),
                "signal": self.can(request, "signal") and not run.is_finished,
                "fork": self.can(request, "fork"),
            },
        }
        if run.parent is not None:
            context["parent_url"] = self.url(run.parent)
        if live:
            context.update(self._locals(run, secrets))
        context["queries"] = self._queries(run, secrets)
        return context

    def _queries(self, run: WorkflowRun, secrets: tuple[str, ...]) -> list[tuple[str, SafeString | str]]:
        """The answer of each named query that takes no arguments (the others say how to call them)."""
        try:
            functions = getattr(resolve_workflow(run.workflow_name), "queries", {})
        except durable.WorkflowNotRegistered:
            return []
        shown: list[tuple[str, SafeString | str]] = []
        for name in sorted(functions):
            parameters = list(inspect.signature(functions[name]).parameters.values())[2:]
            if any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters):
                shown.append((name, f"takes arguments: run.query({name!r}, ...)"))
                continue
            try:  # a query is the user's code: whatever it raises, the page still shows
                value = durable.query(run, name)
                shown.append((name, display.json_block(redact(codec.roundtrip(value)[1], secrets), ())))
            except Exception as error:
                shown.append((name, f"{type(error).__name__}: {error}"))
        return shown

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # The "all runs of this object" link of WorkflowRunsMixin filters by subject.
        return lookup in {"subject_type", "subject_id"} or super().lookup_allowed(lookup, value, request)

    def _locals(self, run: WorkflowRun, secrets: tuple[str, ...]) -> dict[str, Any]:
        # Replay runs the user's workflow code, which may raise anything; the page must still show.
        try:
            variables = durable.query(run)
        except Exception as error:
            return {"locals_error": f"{type(error).__name__}: {error}"}
        shown = redact(variables, secrets)
        return {"locals": [(name, display.json_block(value, ())) for name, value in shown.items()]}


def _input(run: WorkflowRun, secrets: tuple[str, ...]) -> Any:
    """The run's arguments by parameter name; a django.tasks run's as its task was called."""
    arguments = display.loads(run.input_json)
    task = TaskName.parse(run.workflow_name)
    if task is not None and is_call(arguments) and len(arguments["args"]) >= 2:
        args, kwargs = arguments["args"][:2]
        return display.call({"args": args, "kwargs": kwargs}, secrets, positional_names("step", run.workflow_name))
    return display.call(arguments, secrets, positional_names("workflow", run.workflow_name))


def _subject_url(site: str, run: WorkflowRun) -> str | None:
    """The admin page of the run's subject, if the admin has one."""
    if not run.subject_type:
        return None
    app_label, _, model_name = run.subject_type.partition(".")
    try:
        return reverse(f"{site}:{app_label}_{model_name}_change", args=[quote(run.subject_id)])
    except NoReverseMatch:
        return None
