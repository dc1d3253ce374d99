"""A task run's code, found by its name in any process: a one-step workflow around the task.

The workflow sleeps until ``run_after`` (a durable timer, so a deferred task survives
restarts and never runs early) and then yields the task as its one step. The step is the
task function itself, with the retries, timeout and atomicity of ``@task(...)`` options or
else of the backend's ``OPTIONS``; it runs on the Celery queue named like the task's queue
(Django's ``"default"`` is Celery's default queue). Each attempt sends ``task_started``; the
run's end sends ``task_finished`` once it commits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed

from ..conf import settings
from ..core.context import step_context
from ..core.policy import RetryPolicy
from ..core.requests import StepCall, encode_arguments, sleep_until
from ..exceptions import WorkflowNotRegistered
from ..task_names import TaskName
from . import results
from .compat import DEFAULT_TASK_QUEUE_NAME, Task, TaskContext, task_backends, task_finished, task_started

__all__ = ["DurableTaskContext", "TaskStep", "TaskWorkflow", "resolve", "send_finished"]


if TYPE_CHECKING:
    _ContextBase = TaskContext[Any, Any]
else:  # Django 6's TaskContext is not generic at run time; the backport's is
    _ContextBase = TaskContext


# The stubs declare TaskContext unfrozen; both Django 6 and the backport freeze it.
@dataclass(frozen=True, slots=True, kw_only=True)
class DurableTaskContext(_ContextBase):  # type: ignore[misc]
    """Django's ``TaskContext`` (``task_result``, ``attempt``) with the step's idempotency key.

    ``idempotency_key`` is the same for every attempt of this task run, across retries and
    worker crashes: pass it to external APIs so an effect happens once.
    """

    idempotency_key: str


@dataclass(frozen=True, slots=True)
class TaskWorkflow:
    """The workflow of a task run: its input is ``[args, kwargs, run_after]``."""

    name: str

    @property
    def func(self) -> Callable[..., Generator[Any, Any, Any]]:
        step_name = self.name

        def run_task(args: list[Any], kwargs: dict[str, Any], run_after: str | None = None) -> Generator[Any, Any, Any]:
            if run_after is not None:
                yield sleep_until(datetime.fromisoformat(run_after))
            return (yield StepCall(step_name, encode_arguments(args, kwargs, f"task {step_name!r}")))

        return run_task


@dataclass(frozen=True, slots=True)
class TaskStep:
    """The step of a task run: the task's function, called as Django calls it."""

    name: str
    task: Task[Any, Any]
    retry: RetryPolicy
    timeout: timedelta | None
    atomic: bool
    queue: str | None

    @property
    def timeout_seconds(self) -> float:
        return self.timeout.total_seconds() if self.timeout is not None else settings.STEP_TIMEOUT

    @property
    def lease_seconds(self) -> float:
        return self.timeout_seconds + settings.LEASE_GRACE

    @property
    def func(self) -> Callable[..., Any]:
        call = self.__call__

        def run(*args: Any, **kwargs: Any) -> Any:
            return call(*args, **kwargs)

        # The task's own parameters (context, which the caller never passes, left out), so the
        # admin shows its arguments by name.
        signature = inspect.signature(self.task.func)
        parameters = list(signature.parameters.values())[1 if self.task.takes_context else 0 :]
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return run

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        context = step_context()
        result = results.load(self.task.backend, context.workflow_id, self.task)
        task_started.send(sender=type(task_backends[self.task.backend]), task_result=result)
        if self.task.takes_context:
            run_context = DurableTaskContext(task_result=result, idempotency_key=context.idempotency_key)
            return self.task.call(run_context, *args, **kwargs)
        return self.task.call(*args, **kwargs)


@lru_cache(maxsize=1024)
def resolve(name: str) -> tuple[TaskWorkflow, TaskStep]:
    """The workflow and the step a task run's ``name`` stands for (raises ``WorkflowNotRegistered``)."""
    parsed = TaskName.parse(name)
    if parsed is None:
        raise WorkflowNotRegistered(f"{name!r} is not the name of a task run.")
    task = results.task_for(parsed)
    try:
        backend: Any = task_backends[parsed.alias]
    except Exception as error:  # the alias is gone from TASKS
        raise WorkflowNotRegistered(f"task backend {parsed.alias!r} is not configured in TASKS: {error}") from None
    step = TaskStep(
        name=name,
        task=task,
        retry=getattr(task, "retry", None) or backend.retry,
        timeout=getattr(task, "timeout", None) or backend.timeout,
        atomic=bool(getattr(task, "atomic", False)),
        queue=None if parsed.queue == DEFAULT_TASK_QUEUE_NAME else parsed.queue,
    )
    return TaskWorkflow(name), step


def _forget(*, setting: str, **_: Any) -> None:
    if setting == "TASKS":
        resolve.cache_clear()


setting_changed.connect(_forget, dispatch_uid="durable_django.task_backend.forget")


def send_finished(run_id: Any) -> None:
    """Send ``task_finished`` for the task run ``run_id`` (called once its end committed)."""
    result = results.load(None, run_id)
    task_finished.send(sender=type(task_backends[result.backend]), task_result=result)
