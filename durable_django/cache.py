"""Live generators kept per worker process, so a long run is not replayed at every step.

An entry is only used when the run's history is exactly where the cached generator
stopped; anything else falls back to replay, which gives the same result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from uuid import UUID

from .conf import settings
from .engine import Interpreter

__all__ = ["put", "take"]

_lock = threading.Lock()
_entries: OrderedDict[UUID, Interpreter] = OrderedDict()


def take(run_id: UUID, position: int) -> Interpreter | None:
    """Remove and return the generator for ``run_id`` if it waits at ``position``."""
    with _lock:
        interpreter = _entries.pop(run_id, None)
    if interpreter is not None and interpreter.position != position:
        interpreter.close()
        return None
    return interpreter


def put(run_id: UUID, interpreter: Interpreter) -> None:
    evicted: list[Interpreter] = []
    with _lock:
        _entries[run_id] = interpreter
        _entries.move_to_end(run_id)
        while len(_entries) > max(0, int(settings.GENERATOR_CACHE_SIZE)):
            evicted.append(_entries.popitem(last=False)[1])
    for old in evicted:
        old.close()


def clear() -> None:
    with _lock:
        entries = list(_entries.values())
        _entries.clear()
    for interpreter in entries:
        interpreter.close()
