"""A run's unconsumed signals, as one advance reads them: fetched once per name, taken in memory.

Signals of one name are taken oldest first, each by one wait; what was taken is written
back in a single statement before the advance commits.
"""

from __future__ import annotations

import uuid

from django.db.models import Case, IntegerField, Value, When

from ..models import Signal

__all__ = ["Inbox"]


class Inbox:
    def __init__(self, using: str, run_id: uuid.UUID, limit: int) -> None:
        self._using = using
        self._run_id = run_id
        self._limit = limit
        self._pending: dict[str, list[tuple[int, str]]] = {}
        self._taken: dict[int, int] = {}

    def take(self, name: str, seq: int) -> str | None:
        """The payload of the oldest signal ``name`` for the wait at ``seq``, or None."""
        pending = self._pending.get(name)
        if pending is None:
            rows = (
                Signal.objects.using(self._using)
                .inbox(self._run_id, name)
                .values_list("id", "payload_json")[: self._limit]
            )
            pending = self._pending[name] = list(rows)
        if not pending:
            return None
        signal_id, payload_json = pending.pop(0)
        self._taken[signal_id] = seq
        return payload_json

    def flush(self) -> None:
        """Mark every signal taken so far as consumed by its wait."""
        if not self._taken:
            return
        whens = [When(pk=signal_id, then=Value(seq)) for signal_id, seq in self._taken.items()]
        Signal.objects.using(self._using).filter(pk__in=list(self._taken)).update(
            consumed_seq=Case(*whens, output_field=IntegerField())
        )
        self._taken.clear()
