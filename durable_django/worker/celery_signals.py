"""Glue for Celery worker processes: the recovery sweeper and persistent DB connections."""

from __future__ import annotations

import logging
import weakref
from typing import Any

from celery import signals

from ..conf import settings
from .sweeper import Sweeper

__all__ = ["connect_signals"]

logger = logging.getLogger("durable_django")
_sweeper: Sweeper | None = None
_TASK_PREFIX = "durable_django."


def _start_sweeper(**_: Any) -> None:
    global _sweeper
    if settings.WORKER_SWEEPER and _sweeper is None:
        _sweeper = Sweeper()
        _sweeper.start()


def _stop_sweeper(**_: Any) -> None:
    global _sweeper
    if _sweeper is not None:
        _sweeper.stop()
        _sweeper = None


def _keep_connections_for_our_tasks(**_: Any) -> None:
    """Wrap Celery's Django fixup so it skips closing connections around our tasks only."""
    for signal in (signals.task_prerun, signals.task_postrun):
        for _key, reference in list(signal.receivers):
            receiver = reference() if isinstance(reference, weakref.ReferenceType) else reference
            fixup = getattr(receiver, "__self__", None)
            if type(fixup).__name__ != "DjangoWorkerFixup":
                continue
            signal.disconnect(receiver)
            signal.connect(_skipping_our_tasks(receiver), weak=False)


def _skipping_our_tasks(receiver: Any) -> Any:
    def handler(sender: Any = None, **kwargs: Any) -> None:
        if not getattr(sender, "name", "").startswith(_TASK_PREFIX):
            receiver(sender=sender, **kwargs)

    return handler


def connect_signals() -> None:
    signals.worker_ready.connect(_start_sweeper, weak=False, dispatch_uid="durable_django.start_sweeper")
    signals.worker_shutdown.connect(_stop_sweeper, weak=False, dispatch_uid="durable_django.stop_sweeper")
    signals.worker_process_init.connect(
        _keep_connections_for_our_tasks, weak=False, dispatch_uid="durable_django.keep_connections"
    )
    for name, signal in (("init", signals.worker_init), ("ready", signals.worker_ready)):
        signal.connect(
            _keep_connections_for_our_tasks, weak=False, dispatch_uid=f"durable_django.keep_connections.{name}"
        )
