"""The shop app; in worker processes it also labels database sessions and counts publish faults.

Both hooks observe, they change nothing the library does:
- every database session says which process opened it (``application_name`` =
  ``chaos-<role>:<pid>``), so the harness can terminate a given worker's backends;
- when ``DURABLE_FAULT_PUBLISH`` is set, each wake-up message the library decides to drop
  or duplicate is appended to ``$CHAOS_DIR/publish-faults.log``, so the harness can count
  the messages really lost; while ``$CHAOS_DIR/publish-faults.off`` exists (the quiet
  phase at the end) messages go out normally.
"""

from __future__ import annotations

import os
from typing import Any

from django.apps import AppConfig


def label_session(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('application_name', %s, false)", [f"chaos-{_role()}:{os.getpid()}"])


def _role() -> str:
    return os.environ.get("CHAOS_ROLE", "harness")


def observe_publish_faults(directory: str) -> None:
    from durable_django.store import outbox

    # The outbox calls the name it imported from ``faults``: that name, not the one in ``faults``, is wrapped.
    original = outbox.publish_copies  # type: ignore[attr-defined]  # not re-exported, patched on purpose
    if getattr(original, "chaos_observed", False):
        return
    log_path = os.path.join(directory, "publish-faults.log")
    off_path = os.path.join(directory, "publish-faults.off")

    def publish_copies() -> int:
        if os.path.exists(off_path):
            return 1
        copies = original()
        if copies != 1:
            line = f"{'drop' if copies == 0 else 'duplicate'} {os.getpid()}\n".encode()
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return copies

    publish_copies.chaos_observed = True  # type: ignore[attr-defined]  # a mark, so a second ready() wraps once
    outbox.publish_copies = publish_copies  # type: ignore[attr-defined]  # the name the outbox calls


class ShopConfig(AppConfig):
    name = "chaos.shop"
    label = "chaos_shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created

        connection_created.connect(label_session, dispatch_uid="chaos_label_session")
        if os.environ.get("DURABLE_FAULT_PUBLISH") and settings.CHAOS_DIR:
            observe_publish_faults(settings.CHAOS_DIR)
