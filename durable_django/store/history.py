"""A run's history as the engine reads it: entries loaded lazily from the database.

The hot path rarely needs a query: the caller passes the entry it just wrote, and every
position at or past ``next_seq`` is known to be empty.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime

from ..core import engine
from ..core.interpreter import ErrorInfo
from ..models import HistoryEntry

__all__ = ["History", "outcome_of", "recorded"]

Status = HistoryEntry.Status


def outcome_of(status: str, result_json: str | None, error_json: str | None) -> engine.Outcome | None:
    if status == Status.COMPLETED:
        # A completed entry without a result is a signal wait that timed out.
        return engine.TIMED_OUT if result_json is None else engine.Succeeded(result_json)
    if status == Status.FAILED:
        return engine.Failed(ErrorInfo.from_json(error_json or '{"type": "?", "message": "?"}'))
    if status == Status.CANCELLED:
        return engine.CANCELLED
    return None


def recorded(entry: HistoryEntry) -> engine.Recorded:
    return engine.Recorded(
        entry.kind, entry.name, entry.args_json, outcome_of(entry.status, entry.result_json, entry.error_json)
    )


class History(Mapping[int, engine.Recorded]):
    """Entries of one run from position ``start`` on, read from the database on first need."""

    def __init__(self, using: str, run_id: uuid.UUID, next_seq: int, *, start: int = 0) -> None:
        self._using = using
        self._run_id = run_id
        self.next_seq = next_seq
        self._start = start
        self._entries: dict[int, engine.Recorded] = {}
        self._times: dict[int, datetime] = {}
        self._loaded = next_seq <= start

    @classmethod
    def of_entries(
        cls, using: str, run_id: uuid.UUID, next_seq: int, entries: Mapping[int, engine.Recorded], *, start: int = 0
    ) -> History:
        """A history already read, with many runs' in one query: it asks the database nothing more."""
        history = cls(using, run_id, next_seq, start=start)
        history._entries.update((seq, entry) for seq, entry in entries.items() if seq >= start)
        history._loaded = True
        return history

    def add(self, seq: int, entry: engine.Recorded) -> None:
        """Make an entry known without a query (one this transaction just wrote)."""
        self._entries[seq] = entry
        self.next_seq = max(self.next_seq, seq + 1)

    def __getitem__(self, seq: int) -> engine.Recorded:
        if seq not in self._entries and seq < self.next_seq and not self._loaded:
            self._load()
        return self._entries[seq]

    def time_at(self, seq: int) -> datetime | None:
        """When the entry at ``seq`` was written (what ``durable.now()`` read before it), or None if none is yet."""
        if seq >= self.next_seq:
            return None
        if seq not in self._times:
            if not self._loaded:
                self._load()
            if seq not in self._times:  # written by this advance, after the load
                found = HistoryEntry.objects.using(self._using).at(self._run_id, seq)
                written = found.values_list("scheduled_at", flat=True).first()
                if written is None:
                    return None
                self._times[seq] = written
        return self._times[seq]

    def _load(self) -> None:
        rows = HistoryEntry.objects.using(self._using).of(self._run_id).filter(seq__gte=self._start)
        for seq, kind, name, args_json, status, result_json, error_json, scheduled_at in rows.values_list(
            "seq", "kind", "name", "args_json", "status", "result_json", "error_json", "scheduled_at"
        ):
            self._entries.setdefault(
                seq, engine.Recorded(kind, name, args_json, outcome_of(status, result_json, error_json))
            )
            self._times[seq] = scheduled_at
        self._loaded = True

    def __iter__(self) -> Iterator[int]:
        if not self._loaded:
            self._load()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return sum(1 for _ in self)
