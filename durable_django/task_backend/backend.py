"""``DurableBackend``: Django's task API on durable_django's outbox, workers, retries and admin.

``TASKS = {"default": {"BACKEND": "durable_django.task_backend.DurableBackend"}}`` makes every
``@task`` a durable, transactional outbox task: ``enqueue()`` writes the run and its work item
in the caller's transaction (nothing runs unless it commits; outside a transaction it
commits on its own), and the project's Celery workers run it with leases, retries and
recovery of lost messages, like any step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core import checks
from django.db import transaction

from ..core.policy import RetryPolicy
from ..exceptions import WorkflowDefinitionError
from ..runs import start
from ..store.leases import database
from ..task_names import SEPARATOR, TaskName
from . import results
from .compat import BaseTaskBackend, InvalidTask, Task, TaskResult, task_enqueued
from .running import TaskWorkflow

__all__ = ["DurableBackend", "DurableTask", "task_options"]

#: The longest ``workflow_name`` a run can have.
_NAME_MAX = 255

if TYPE_CHECKING:
    _TaskBase = Task[Any, Any]
else:  # Django 6's Task is not generic at run time; the backport's is
    _TaskBase = Task


@dataclass(frozen=True, slots=True, kw_only=True)
class DurableTask(_TaskBase):
    """The backend's ``task_class``: ``@task(retry=RetryPolicy(...), timeout=..., atomic=...)``.

    Each option left unset falls back to the backend's ``OPTIONS``, then to durable_django's
    step defaults. ``atomic=True`` runs the task inside the transaction that records its
    result, so its database writes happen exactly once.
    """

    retry: RetryPolicy | None = None
    timeout: timedelta | None = None
    atomic: bool = False


def task_options(
    *,
    retry: RetryPolicy | dict[str, Any] | None = None,
    timeout: timedelta | float | None = None,
    atomic: bool | None = None,
) -> Callable[[DurableTask], DurableTask]:
    """Set a task's durable options on any Django: ``@task_options(retry=...)`` above ``@task``.

    Django 6.1 and the ``django-tasks`` backport pass ``@task(retry=..., timeout=..., atomic=...)``
    on to the backend's task class; Django 6.0's ``@task`` takes no such options (a
    ``TypeError``), so this sets them there. It returns a new task, as ``Task.using()`` does.
    """

    def apply(task: DurableTask) -> DurableTask:
        if not isinstance(task, DurableTask):
            raise WorkflowDefinitionError(
                f"task_options() goes above @task, on a task of a DurableBackend; {task!r} is a "
                f"{type(task).__name__}. Write @task_options(...) on the line above @task, and make sure "
                "TASKS' backend is durable_django.task_backend.DurableBackend."
            )
        changes: dict[str, Any] = {}
        try:
            if retry is not None:
                changes["retry"] = _retry_option(retry)
            if timeout is not None:
                changes["timeout"] = _timeout_option(timeout)
        except WorkflowDefinitionError as error:
            raise InvalidTask(f"Task {task.module_path!r}: {error}.") from None
        if atomic is not None:
            changes["atomic"] = bool(atomic)
        return replace(task, **changes)

    return apply


def _retry_option(value: Any) -> RetryPolicy:
    if isinstance(value, dict):
        value = RetryPolicy(**value)
    if not isinstance(value, RetryPolicy):
        raise WorkflowDefinitionError(f"{value!r} is not a durable.RetryPolicy (nor a dict of its arguments)")
    return value


def _timeout_option(value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise WorkflowDefinitionError(f"{value!r} is not a positive timedelta (or number of seconds)")
    return value


class DurableBackend(BaseTaskBackend):
    """Runs ``django.tasks`` tasks as durable runs; ``OPTIONS``: ``retry``, ``timeout``."""

    task_class = DurableTask
    supports_defer = True  # run_after is a durable timer
    supports_async_task = True  # coroutine functions run to completion in the worker
    supports_get_result = True
    supports_priority = False  # steps are taken in due order, not by priority

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.problems: list[str] = []
        options = dict(self.options)
        self.retry = RetryPolicy()
        self.timeout: timedelta | None = None
        try:
            self.retry = _retry_option(options.pop("retry", RetryPolicy()))
        except (WorkflowDefinitionError, TypeError) as error:
            self.problems.append(f"OPTIONS['retry']: {error}")
        try:
            self.timeout = _timeout_option(options.pop("timeout", None))
        except WorkflowDefinitionError as error:
            self.problems.append(f"OPTIONS['timeout']: {error}")
        self.unknown_options = sorted(options)

    def validate_task(self, task: Task[Any, Any]) -> None:
        super().validate_task(task)
        if SEPARATOR in self.alias or SEPARATOR in task.queue_name or not task.queue_name:
            raise InvalidTask(f"Backend alias and queue names must be non-empty and hold no {SEPARATOR!r}.")
        if len(str(TaskName(self.alias, task.queue_name, task.module_path))) > _NAME_MAX:
            raise InvalidTask(f"Task {task.module_path!r}: its module path is too long to name a run.")
        try:
            _retry_option(getattr(task, "retry", None) or RetryPolicy())
            _timeout_option(getattr(task, "timeout", None))
        except (WorkflowDefinitionError, TypeError) as error:
            raise InvalidTask(f"Task {task.module_path!r}: {error}.") from None

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any, Any]:
        """Create the task's run in the caller's transaction (or one of its own); workers run it after commit."""
        self.validate_task(task)
        name = str(TaskName(self.alias, task.queue_name, task.module_path))
        run_after = None if task.run_after is None else task.run_after.isoformat()
        run = start(TaskWorkflow(name), [list(args), dict(kwargs), run_after], {}, workflow_id=None)
        result = results.task_result(run, task)
        sender = type(self)
        transaction.on_commit(lambda: task_enqueued.send(sender, task_result=result), using=database())
        return result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        """The task run ``result_id`` as it stands now; ``TaskResultDoesNotExist`` if there is none."""
        return results.load(self.alias, result_id)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:  # type: ignore[override]
        messages: list[checks.CheckMessage] = []
        where = f"TASKS[{self.alias!r}]"
        if not apps.is_installed("durable_django"):
            messages.append(
                checks.Error(
                    f"{where} uses DurableBackend, but durable_django is not in INSTALLED_APPS.",
                    hint="Add 'durable_django' to INSTALLED_APPS and run migrate.",
                    id="durable_django.E004",
                )
            )
        for problem in self.problems:
            messages.append(checks.Error(f"{where}: {problem}.", id="durable_django.E005"))
        for queue in sorted(self.queues):
            if SEPARATOR in queue or not queue:
                messages.append(
                    checks.Error(
                        f"{where}: queue name {queue!r} is empty or holds {SEPARATOR!r}.", id="durable_django.E005"
                    )
                )
        if SEPARATOR in self.alias:
            messages.append(checks.Error(f"{where}: the alias holds {SEPARATOR!r}.", id="durable_django.E005"))
        for option in self.unknown_options:
            messages.append(
                checks.Warning(
                    f"{where}: OPTIONS[{option!r}] is not an option of DurableBackend; it has no effect.",
                    hint="Its options are 'retry' (a durable.RetryPolicy) and 'timeout' (a timedelta).",
                    id="durable_django.W002",
                )
            )
        return messages
