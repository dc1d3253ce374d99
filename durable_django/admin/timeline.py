"""A run's history, shaped for people: one item per position, groups holding their leaves.

Three queries whatever the history holds: the entries (with their child runs), the
signals, and the attempts whose worker died (:class:`LostAttempt`). Values are decoded and
redacted here, so the template only lays them out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.safestring import SafeString

from ..core.requests import Kind
from ..models import HistoryEntry, LostAttempt, Signal, Update, WorkflowRun
from ..store.owners import Owner
from . import display
from .redaction import positional_names, redact

__all__ = ["LIMIT", "Item", "Lost", "Timeline", "WaitingSignal", "build"]

#: The most history positions one page shows (the newest); the download has them all.
LIMIT = 500

Status = HistoryEntry.Status

Names = Callable[[str, str], tuple[str, ...]]

#: The timeline's short labels, where the request kind's own name does not read as one.
_LABELS: dict[str, str] = {
    Kind.ALL_OF: "all of",
    Kind.ANY_OF: "any of",
    Kind.SIGNAL: "wait signal",
    Kind.STATE: "set state",
    Kind.UPDATE: "wait update",
    Kind.REPLY: "reply",
}


@dataclass(frozen=True)
class Lost:
    """An attempt whose worker died or hung: it never reported, and the next one took over."""

    attempt: int
    owner: str
    detected_at: datetime


@dataclass
class Item:
    """One history position as the page shows it."""

    seq: int
    kind: str
    name: str
    status: str
    attempts: int
    #: What was asked: call arguments, a sleep's length, a signal's timeout, a state value.
    asked: SafeString | str
    result: SafeString | None
    #: ``{"type", "message", "traceback"}``, redacted.
    error: dict[str, Any] | None
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    fire_at: datetime | None
    #: ``took 12 ms`` for steps, ``waited 3 h`` for the rest; ``running for ...`` while open.
    took: str
    child: WorkflowRun | None
    #: The signal this wait consumed, if it got one (a wait that got none timed out).
    signal: Signal | None = None
    leaves: list[Item] = field(default_factory=list)
    #: For ``any_of``: the position of the leaf that finished first.
    winner: int | None = None
    #: Attempts of this step that never reported (a killed or hung worker).
    lost: list[Lost] = field(default_factory=list)

    @property
    def asked_is_block(self) -> bool:
        """Long arguments get a block of their own under the heading."""
        return str(self.asked).startswith("<pre")

    @property
    def label(self) -> str:
        return _LABELS.get(self.kind, self.kind)

    @property
    def is_group(self) -> bool:
        return self.kind in {Kind.ALL_OF, Kind.ANY_OF}

    @property
    def timed_out(self) -> bool:
        return self.kind == Kind.SIGNAL and self.status == Status.COMPLETED and self.signal is None

    @property
    def status_label(self) -> str:
        """The status in words for this kind: an open step is queued, running or retrying; a wait waits."""
        if self.timed_out:
            return "timed out"
        if self.status != Status.SCHEDULED:
            return self.status
        if self.kind != Kind.STEP:
            return "waiting"
        if self.error is not None:
            return "retrying"
        return "running" if self.started_at else "queued"


@dataclass(frozen=True)
class WaitingSignal:
    """A signal in the run's inbox that no ``wait_signal`` has taken yet."""

    name: str
    payload: SafeString
    sent_at: datetime


@dataclass
class Timeline:
    items: list[Item]
    waiting: list[WaitingSignal]
    #: Updates in the run's inbox that no ``wait_update`` has taken yet (as waiting signals show).
    updates: list[WaitingSignal]
    #: How many positions the run's history has, and the first one shown.
    total: int
    first: int


def _took(entry: HistoryEntry, now: datetime) -> str:
    step = entry.kind == Kind.STEP
    begin = entry.started_at if step else entry.scheduled_at
    if begin is None:
        return ""
    if entry.finished_at is not None:
        return f"{'took' if step else 'waited'} {display.duration(entry.finished_at - begin)}"
    if entry.status == Status.SCHEDULED:
        return f"{'running' if step else 'waiting'} for {display.duration(now - begin)}"
    return ""


def _asked(entry: HistoryEntry, secrets: tuple[str, ...], names: Names) -> SafeString | str:
    arguments = display.loads(entry.args_json)
    if entry.kind in {Kind.STEP, Kind.CHILD}:
        return display.call(arguments, secrets, names("step" if entry.kind == Kind.STEP else "workflow", entry.name))
    if entry.kind == Kind.SLEEP and isinstance(arguments, dict):
        if "seconds" in arguments:
            return f"for {display.duration(timedelta(seconds=arguments['seconds']))}"
        return f"until {arguments.get('until')}"
    if entry.kind in {Kind.SIGNAL, Kind.UPDATE} and isinstance(arguments, dict):
        timeout = arguments.get("timeout")
        return "no timeout" if timeout is None else f"timeout {display.duration(timedelta(seconds=timeout))}"
    if entry.kind in {Kind.STATE, Kind.REPLY}:
        return display.json_block(arguments, secrets)
    if entry.kind in {Kind.ALL_OF, Kind.ANY_OF}:
        return f"{arguments} requests"
    return ""


def _item(entry: HistoryEntry, secrets: tuple[str, ...], names: Names, now: datetime) -> Item:
    result = None
    # A state's value is what it asked; a group's values are its leaves' results.
    if entry.result_json is not None and entry.kind not in {Kind.STATE, Kind.REPLY, Kind.ALL_OF, Kind.ANY_OF}:
        result = display.json_block(display.loads(entry.result_json), secrets)
    error = display.loads(entry.error_json)
    if error is not None and not isinstance(error, dict):
        error = {"type": "", "message": str(error), "traceback": ""}
    return Item(
        seq=entry.seq,
        kind=entry.kind,
        name=entry.name,
        status=entry.status,
        attempts=entry.attempts,
        asked=_asked(entry, secrets, names),
        result=result,
        error=None if error is None else redact(error, secrets),
        scheduled_at=entry.scheduled_at,
        started_at=entry.started_at,
        finished_at=entry.finished_at,
        fire_at=entry.fire_at,
        took=_took(entry, now),
        child=entry.child,
    )


def build(run: WorkflowRun, secrets: tuple[str, ...]) -> Timeline:
    """The run's history (its newest :data:`LIMIT` positions) and the signals it has not taken."""
    first = max(run.next_seq - LIMIT, 0)
    entries = HistoryEntry.objects.filter(run=run, seq__gte=first).select_related("child").order_by("seq")
    signals = Signal.objects.filter(Q(consumed_seq__isnull=True) | Q(consumed_seq__gte=first), run=run).order_by("id")
    now = timezone.now()
    names = functools.cache(positional_names)  # one signature lookup per step or workflow
    items: dict[int, Item] = {}
    top: list[Item] = []
    for entry in entries:
        item = items[entry.seq] = _item(entry, secrets, names, now)
        group = None if entry.group_seq is None else items.get(entry.group_seq)
        (top if group is None else group.leaves).append(item)
    for item in top:
        if item.kind == Kind.ANY_OF and item.status != Status.SCHEDULED:  # the others were cancelled
            item.winner = next((leaf.seq for leaf in item.leaves if leaf.status != Status.CANCELLED), None)
    lost = LostAttempt.objects.filter(entry__run=run, entry__seq__gte=first).order_by("attempt")
    for seq, attempt, owner, detected_at in lost.values_list("entry__seq", "attempt", "owner", "detected_at"):
        if seq in items:
            items[seq].lost.append(Lost(attempt, Owner.short(owner), detected_at))
    waiting = []
    for signal in signals:
        if signal.consumed_seq is None:
            payload = display.json_block(display.loads(signal.payload_json), secrets)
            waiting.append(WaitingSignal(signal.name, payload, signal.created_at))
        elif signal.consumed_seq in items:
            items[signal.consumed_seq].signal = signal
    inbox = Update.objects.filter(run=run, consumed_seq__isnull=True).order_by("id")
    updates = [
        WaitingSignal(name, display.json_block(display.loads(payload_json), secrets), created_at)
        for name, payload_json, created_at in inbox.values_list("name", "payload_json", "created_at")
    ]
    return Timeline(items=top, waiting=waiting, updates=updates, total=run.next_seq, first=first)
