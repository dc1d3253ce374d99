"""Runs in the states the admin must show, made in the test's process (no worker, no broker)."""

from __future__ import annotations

from typing import Any

from durable_django.definitions import WorkflowDefinition
from durable_django.models import WorkflowRun
from durable_django.testing import run_until_idle

LIST = "/admin/durable_django/workflowrun/"


def page(run: WorkflowRun, action: str = "change") -> str:
    return f"{LIST}{run.pk}/{action}/"


def worked(workflow: WorkflowDefinition[Any], *args: Any, workflow_id: str, **kwargs: Any) -> WorkflowRun:
    """Start ``workflow`` and work it until it finishes or waits."""
    run = workflow.start(*args, workflow_id=workflow_id, **kwargs)
    run_until_idle()
    run.refresh_from_db()
    return run


def settle(run: WorkflowRun) -> WorkflowRun:
    run_until_idle()
    run.refresh_from_db()
    return run
