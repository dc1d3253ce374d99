"""A run's unconsumed signals, as one advance reads them: fetched a page at a time per name, taken in memory.

It also answers whether an update of a name waits (``(Kind.UPDATE, name) in inbox``); updates
are taken one statement each by :mod:`.updates`, in the same transaction.

Signals of one name are taken oldest first, each by one wait; what was taken is written
back in a single statement before the advance commits. Pages follow one another until a
name's signals run out, so a group of many waits finds every signal already sent.
"""

from __future__ import annotations

import uuid
from collections import deque

from django.db.models import Case, IntegerField, Value, When

from ..core.requests import Kind
from ..models import Signal
from . import updates

__all__ = ["Inbox"]

#: Signals of one name read per query.
PAGE = 100


class Inbox:
    """The run's waiting signals by name; ``(Kind.SIGNAL, name) in inbox`` says whether one is waiting."""

    def __init__(self, using: str, run_id: uuid.UUID) -> None:
        self._using = using
        self._run_id = run_id
        self._pending: dict[str, deque[tuple[int, str]]] = {}
        self._read_to: dict[str, int] = {}  # the last signal id read of each name
        self._exhausted: set[str] = set()  # names whose last page came back short
        self._taken: dict[int, int] = {}

    def _fill(self, name: str) -> deque[tuple[int, str]]:
        pending = self._pending.setdefault(name, deque())
        if pending or name in self._exhausted:
            return pending
        rows = Signal.objects.using(self._using).inbox(self._run_id, name)
        if name in self._read_to:
            rows = rows.filter(id__gt=self._read_to[name])
        page = list(rows.values_list("id", "payload_json")[:PAGE])
        pending.extend(page)
        if page:
            self._read_to[name] = page[-1][0]
        if len(page) < PAGE:
            self._exhausted.add(name)
        return pending

    def __contains__(self, message: object) -> bool:
        """Whether a message ``(kind, name)`` waits: a signal (``Kind.SIGNAL``) or an update (``Kind.UPDATE``)."""
        if not isinstance(message, tuple) or len(message) != 2:
            return False
        kind, name = message
        if kind == Kind.UPDATE:
            return updates.waiting(self._using, self._run_id, name)
        return kind == Kind.SIGNAL and bool(self._fill(name))

    def take(self, name: str, seq: int) -> str | None:
        """The payload of the oldest signal ``name`` for the wait at ``seq``, or None."""
        pending = self._fill(name)
        if not pending:
            return None
        signal_id, payload_json = pending.popleft()
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
