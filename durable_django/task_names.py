"""Names of the runs django.tasks' tasks become.

A task enqueued through :class:`durable_django.task_backend.DurableBackend` runs as a one-step
workflow named ``durable_django.task:<backend alias>:<queue name>:<module path>``. The alias
and the queue are in the name because ``task.using(backend=..., queue_name=...)`` changes them
per enqueue, and a worker must know both (the Celery queue of the step, the backend's retry
options) from the stored name alone. Nothing here imports ``django.tasks``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SEPARATOR", "TASK_PREFIX", "TaskName"]

TASK_PREFIX = "durable_django.task:"
#: Parts of a task name are separated by this, so an alias or queue name cannot hold it.
SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class TaskName:
    """What a task run's name says: which backend, which queue, which function."""

    alias: str
    queue: str
    module_path: str

    def __str__(self) -> str:
        return f"{TASK_PREFIX}{self.alias}{SEPARATOR}{self.queue}{SEPARATOR}{self.module_path}"

    @classmethod
    def parse(cls, name: str) -> TaskName | None:
        """The parts of a task run's name; None for any other name."""
        if not name.startswith(TASK_PREFIX):
            return None
        parts = name.removeprefix(TASK_PREFIX).split(SEPARATOR, 2)
        return cls(*parts) if len(parts) == 3 else None
