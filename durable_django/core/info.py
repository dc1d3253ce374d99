"""What workflow code may read about its run without a step: :func:`workflow_info`, :func:`now`, :func:`uuid4`.

Each read gives the same answer on every replay. The facts of the run (its ids, its
generation) never change within a generation; the position is where the code is in
history; the time is the one recorded at that position; an id is derived from the run, the
position and how many ids the code took there. The store supplies the run's facts, the
recorded times and the database's clock (:meth:`Reads.bind`); this module has no clock.
"""

from __future__ import annotations

import contextvars
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..exceptions import InvalidRequest, WorkflowContextUnavailable

__all__ = ["Reads", "RunFacts", "WorkflowInfo", "answering", "now", "uuid4", "workflow_info"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RunFacts:
    """What the store knows of the run a generator belongs to; fixed for one generation."""

    workflow_id: str
    run_id: str
    workflow_name: str
    generation: int = 0
    parent_workflow_id: str | None = None
    started_at: datetime | None = None
    #: ``continue_as_new_suggested`` from this many history entries on (``DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER``).
    suggest_after: int = 10_000


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkflowInfo:
    """The run that workflow code belongs to, as of the point the code has reached.

    Every field is replay-safe: the same code at the same point reads the same value.
    ``position`` is the history position the next request takes; ``history_length`` is how
    many entries this generation's history holds at this point (the same number: each
    entry takes one position). ``continue_as_new_suggested`` turns true once that number
    reaches ``DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER``.
    """

    workflow_id: str
    run_id: str
    workflow_name: str
    generation: int
    position: int
    history_length: int
    parent_workflow_id: str | None
    started_at: datetime | None
    continue_as_new_suggested: bool


def _unbound() -> RunFacts:
    raise WorkflowContextUnavailable("this workflow generator was not given its run's facts")


class Reads:
    """The replay-safe reads of one generator: the run's facts, and per position its time and ids taken."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._facts_source: Callable[[], RunFacts] = _unbound
        self._facts: RunFacts | None = None
        #: The time recorded at a position, or None where history has nothing yet (the code runs live).
        self.recorded_time: Callable[[int], datetime | None] = lambda seq: None
        #: The database's clock; read once per position, the first time live code asks.
        self.clock: Callable[[], datetime] | None = None
        #: Times read live, by position, for the store to record with the entry it writes there.
        self.unwritten: dict[int, datetime] = {}
        self._at = -1
        self._time: datetime | None = None
        self._ids = 0
        #: Updates received with wait_update(), by id: True once the code answered one.
        self.updates: dict[str, bool] = {}

    def bind(
        self,
        facts: Callable[[], RunFacts] | None = None,
        *,
        recorded_time: Callable[[int], datetime | None],
        clock: Callable[[], datetime],
    ) -> None:
        """Give the generator what it reads: the facts (kept once loaded), and this advance's times and clock."""
        if facts is not None and self._facts is None:
            self._facts_source = facts
        self.recorded_time = recorded_time
        self.clock = clock

    @property
    def facts(self) -> RunFacts:
        if self._facts is None:
            self._facts = self._facts_source()
        return self._facts

    def _move_to(self, position: int) -> None:
        if position != self._at:
            self._at, self._time, self._ids = position, None, 0

    def info(self, position: int) -> WorkflowInfo:
        facts = self.facts
        return WorkflowInfo(
            workflow_id=facts.workflow_id,
            run_id=facts.run_id,
            workflow_name=facts.workflow_name,
            generation=facts.generation,
            position=position,
            history_length=position,
            parent_workflow_id=facts.parent_workflow_id,
            started_at=facts.started_at,
            continue_as_new_suggested=position >= facts.suggest_after,
        )

    def now(self, position: int) -> datetime:
        self._move_to(position)
        if self._time is None:
            recorded = self.recorded_time(position)
            if recorded is None:
                if self.clock is None:
                    raise WorkflowContextUnavailable(f"workflow {self._name!r} has no clock to read")
                recorded = self.clock()
                self.unwritten[position] = recorded
            self._time = recorded if recorded.tzinfo is not None else recorded.replace(tzinfo=UTC)
        return self._time

    def uuid4(self, position: int) -> uuid.UUID:
        self._move_to(position)
        facts = self.facts
        seed = f"{facts.run_id}:{facts.generation}:{position}:{self._ids}"
        self._ids += 1
        return uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4)


#: The reads and the position of the workflow code running now (set while a generator runs).
current: contextvars.ContextVar[tuple[Reads, Callable[[], int]] | None] = contextvars.ContextVar(
    "durable_workflow_reads", default=None
)


def _reads(call: str) -> tuple[Reads, int]:
    running = current.get()
    if running is None:
        raise WorkflowContextUnavailable(
            f"durable.{call} was called outside workflow code; call it only inside a function decorated with "
            "@durable.workflow, while it runs (in a step, use durable.step_context(), the real clock and uuid.uuid4())."
        )
    reads, position = running
    return reads, position()


def workflow_info() -> WorkflowInfo:
    """The run this workflow code belongs to: ids, generation, position in history, ``continue_as_new_suggested``."""
    reads, position = _reads("workflow_info()")
    return reads.info(position)


def now() -> datetime:
    """The time recorded at the code's current position in history (aware, UTC): the same on every replay.

    Live code reads the database's clock the first time it asks at a position, and that time
    is recorded with the next history entry; later calls at the same position, and replays,
    get that same time. No step is needed.
    """
    reads, position = _reads("now()")
    return reads.now(position)


def uuid4() -> uuid.UUID:
    """A random-looking UUID (version 4) derived from the run and the code's position: the same on every replay."""
    reads, position = _reads("uuid4()")
    return reads.uuid4(position)


def answering(call: str, update_id: str) -> None:
    """Check the running code received update ``update_id`` and has not answered it yet; mark it answered."""
    reads, _ = _reads(call)
    answered = reads.updates.get(update_id)
    if answered is None:
        raise InvalidRequest(
            f"durable.{call} answers update {update_id!r}, which this run has not received; answer only what "
            "`yield durable.wait_update(name)` returned."
        )
    if answered:
        raise InvalidRequest(f"durable.{call}: update {update_id!r} was already answered; an update gets one answer.")
    reads.updates[update_id] = True
