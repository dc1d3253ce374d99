"""A ``django.tasks`` backend: any ``@task`` becomes a durable, transactional outbox task.

``TASKS = {"default": {"BACKEND": "durable_django.task_backend.DurableBackend"}}``. Needs
Django 6, or on Django 5.2 the ``django-tasks`` backport. See docs/tasks.md.
"""

from __future__ import annotations

from .backend import DurableBackend, DurableTask, task_options
from .running import DurableTaskContext

__all__ = ["DurableBackend", "DurableTask", "DurableTaskContext", "task_options"]
