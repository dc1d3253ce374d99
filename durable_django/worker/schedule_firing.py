"""The sweeper's part in schedules: write the code's schedules once per process, then fire due ticks."""

from __future__ import annotations

from ..core.schedules import declared
from ..store import schedule_sync, schedules

__all__ = ["sweep"]

_synced = False


def sweep() -> int:
    """Sync the declared schedules on this process's first call (again after a failure), then fire."""
    global _synced
    if not _synced:
        schedule_sync.sync(declared())
        _synced = True
    return schedules.sweep()
