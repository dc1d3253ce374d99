"""Live generators kept per worker process, so a long run is not replayed at every step.

An entry is used only when the run's history is exactly where the cached generator
stopped (same generation, same number of positions); anything else falls back to
replay, which gives the same result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from uuid import UUID

from ..conf import settings
from ..core.interpreter import Interpreter

__all__ = ["clear", "discard", "matches", "put", "take"]

_lock = threading.Lock()
_entries: OrderedDict[UUID, tuple[int, int, Interpreter]] = OrderedDict()


def take(run_id: UUID, generation: int, next_seq: int) -> Interpreter | None:
    """Remove and return the generator for ``run_id`` if it matches the stored history."""
    with _lock:
        entry = _entries.pop(run_id, None)
    if entry is None:
        return None
    cached_generation, cached_next_seq, interpreter = entry
    if (cached_generation, cached_next_seq) != (generation, next_seq):
        interpreter.close()
        return None
    return interpreter


def matches(run_id: UUID, generation: int, next_seq: int) -> bool:
    """Whether this process holds the run's generator stopped at exactly this point (nothing taken)."""
    with _lock:
        entry = _entries.get(run_id)
    return entry is not None and entry[:2] == (generation, next_seq)


def put(run_id: UUID, generation: int, next_seq: int, interpreter: Interpreter) -> None:
    evicted: list[Interpreter] = []
    with _lock:
        _entries[run_id] = (generation, next_seq, interpreter)
        _entries.move_to_end(run_id)
        while len(_entries) > max(0, settings.GENERATOR_CACHE_SIZE):
            evicted.append(_entries.popitem(last=False)[1][2])
    for old in evicted:
        old.close()


def discard(run_id: UUID) -> None:
    """Forget the generator of ``run_id``, if this process holds one."""
    with _lock:
        entry = _entries.pop(run_id, None)
    if entry is not None:
        entry[2].close()


def clear() -> None:
    with _lock:
        entries = list(_entries.values())
        _entries.clear()
    for _, _, interpreter in entries:
        interpreter.close()
