"""Everything the engine tells the outside world: log lines, Django signals, OpenTelemetry spans.

Each event is logged with structured fields (``extra``) and sent as a Django signal once
its transaction commits, so nothing is reported for work that rolled back. With
``opentelemetry-api`` installed, every step attempt is a span, and every finished run a
span from its start to its end; without it, nothing of this costs anything.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import transaction

from .. import signals
from ..core import codec
from ..models import WorkflowRun

__all__ = ["run_ended", "run_started", "step_attempt", "step_failed"]

logger = logging.getLogger("durable_django")

_trace: Any = None
_tracer: Any = None
try:  # optional: spans only when the application installs OpenTelemetry
    _trace = importlib.import_module("opentelemetry.trace")
    _tracer = _trace.get_tracer("durable_django")
except ImportError:  # pragma: no cover - depends on the environment
    pass
_default_tracer = _tracer

_ENDINGS: dict[str, Any] = {
    WorkflowRun.Status.COMPLETED: signals.run_completed,
    WorkflowRun.Status.FAILED: signals.run_failed,
    WorkflowRun.Status.CANCELLED: signals.run_cancelled,
    WorkflowRun.Status.BLOCKED: signals.run_blocked,
}


def _send(using: str, signal: Any, **fields: Any) -> None:
    transaction.on_commit(lambda: signal.send_robust(sender=WorkflowRun, **fields), using=using)


def run_started(using: str, run_id: uuid.UUID, workflow_id: str, workflow: str) -> None:
    fields = {"run_id": run_id, "workflow_id": workflow_id, "workflow": workflow}
    message = "durable_django: run %s (%s) started"
    transaction.on_commit(lambda: logger.info(message, workflow_id, workflow, extra=fields), using=using)
    _send(using, signals.run_started, **fields)


def run_ended(
    using: str, run_id: uuid.UUID, workflow_id: str, workflow: str, status: str, error_json: str | None = None
) -> None:
    """A run completed, failed, was cancelled, or blocked."""
    error = None if error_json is None else codec.decode(error_json)
    fields = {"run_id": run_id, "workflow_id": workflow_id, "workflow": workflow, "status": status}
    level = logging.INFO if status in {WorkflowRun.Status.COMPLETED, WorkflowRun.Status.CANCELLED} else logging.WARNING
    message = "durable_django: run %s (%s) %s" + ("" if error is None else ": %s: %s")
    arguments = (workflow_id, workflow, status) + (() if error is None else (error["type"], error["message"]))
    transaction.on_commit(lambda: logger.log(level, message, *arguments, extra=fields), using=using)
    _send(using, _ENDINGS[status], error=error, **fields)
    if _tracer is not None:
        transaction.on_commit(lambda: _run_span(run_id, fields, error), using=using)


def step_failed(using: str, held: Any, error: dict[str, str], *, final: bool) -> None:
    """An attempt of a step raised (or its worker died); ``final`` when no retry follows."""
    fields = {
        "run_id": held.run_id,
        "workflow_id": held.workflow_id,
        "step": held.step,
        "seq": held.seq,
        "attempt": held.attempt,
        "final": final,
    }
    what = "failed for good" if final else "failed, will retry"
    transaction.on_commit(
        lambda: logger.warning(
            "durable_django: step %s #%s of run %s %s on attempt %s: %s: %s",
            held.step, held.seq, held.workflow_id, what, held.attempt, error["type"], error["message"],
            extra=fields,
        ),
        using=using,
    )  # fmt: skip
    _send(using, signals.step_failed, error=error, **fields)


@contextmanager
def step_attempt(held: Any) -> Iterator[None]:
    """A span around one attempt of a step, when OpenTelemetry is there."""
    if _tracer is None:
        yield
        return
    attributes = {
        "durable.run_id": str(held.run_id),
        "durable.workflow_id": held.workflow_id,
        "durable.step": held.step,
        "durable.seq": held.seq,
        "durable.attempt": held.attempt,
    }
    with _tracer.start_as_current_span(f"step {held.step}", attributes=attributes):
        yield


def _run_span(run_id: uuid.UUID, fields: dict[str, Any], error: dict[str, str] | None) -> None:
    if _tracer is _default_tracer and isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        return  # the API without an SDK records nothing: spare the query
    started: datetime | None = WorkflowRun.objects.filter(pk=run_id).values_list("created_at", flat=True).first()
    start_time = None if started is None else int(started.timestamp() * 1e9)
    span = _tracer.start_span(f"run {fields['workflow']}", start_time=start_time)
    for key, value in fields.items():
        span.set_attribute(f"durable.{key}", str(value))
    if error is not None and _trace is not None:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, f"{error['type']}: {error['message']}"))
    span.end()
