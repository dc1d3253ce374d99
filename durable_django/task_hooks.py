"""What every project needs to run django.tasks' task runs, installed by ``AppConfig.ready``.

Workers find a task run's code by its name, and its end sends Django's ``task_finished``.
This module imports nothing of ``django.tasks``: projects without it lose nothing, and the
backend is imported only once a task run is met.
"""

from __future__ import annotations

from typing import Any

from . import signals
from .core import registry
from .task_names import TASK_PREFIX

__all__ = ["install"]


def _resolve(name: str) -> tuple[registry.WorkflowCode, registry.StepCode]:
    from .task_backend import running

    return running.resolve(name)


def _run_ended(sender: Any, *, run_id: Any, workflow: str, **_: Any) -> None:
    if workflow.startswith(TASK_PREFIX):
        from .task_backend import running

        running.send_finished(run_id)


def install() -> None:
    """Resolve task runs' names, and send ``task_finished`` when one ends (after its commit)."""
    registry.register_resolver(TASK_PREFIX, _resolve)
    for ending in (signals.run_completed, signals.run_failed, signals.run_cancelled):
        ending.connect(_run_ended, dispatch_uid=f"durable_django.task_finished.{id(ending)}")
