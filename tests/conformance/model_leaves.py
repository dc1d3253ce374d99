"""How the reference model carries out each request, and how groups decide.

Opening leaves (a step's attempts, a timer, a wait that takes a buffered signal or update, a
child), taking signals and updates (an update wait has "exactly the semantics of wait_signal"),
deciding an ``all_of``/``any_of``, and cancelling what a yield waited for.
Every rule is a sentence of the contract; the comments quote it. :class:`~.model_runs.Runs`
adds the life of a run around it.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import model_requests as rq
from .program import POLICIES, Program
from .walker import Outcome

if TYPE_CHECKING:
    from .model import Model, Timer

FINISHED = ("completed", "failed", "cancelled")
#: Waits that take a message from the run's inbox: signals, and updates (which wait in an inbox of their own).
WAITS = (rq.Wait, rq.WaitUpdate)
#: Attempts lost to kills: (step tag, attempt number) -> whether its body ran before the kill.
Lost = Mapping[tuple[str, int], bool]


@dataclass(eq=False)
class Slot:
    """One leaf the run waits on: pending, then done (with a value), failed, or cancelled."""

    leaf: rq.Leaf
    state: str = "pending"
    value: Any = None
    error: str = ""
    attempts: int = 0
    timer: Timer | None = None
    position: int = 0  # its history position (a child's workflow_id ends with it)


@dataclass(eq=False)
class Waiting:
    kind: str  # "leaf", "all_of" or "any_of"
    slots: list[Slot]


@dataclass(eq=False)
class Run:
    scope: str
    program: Program
    parent: Run | None
    gen: int = 0
    status: str = "pending"
    result: Any = None
    error: str | None = None
    state: str | None = None
    cancel: str = "none"  # "requested", then "delivered" once raised
    inbox: list[tuple[str, Any]] = field(default_factory=list)
    updates: list[rq.UpdateRequest] = field(default_factory=list)  # sent, not taken yet, oldest first
    taken: list[str] = field(default_factory=list)  # update ids this generation took
    wid: str = "~"  # its workflow_id, with the root's written "~"
    deadline: int | None = None  # model time of its deadline, while it has one
    deadline_timer: Timer | None = None
    cancel_reason: str = "Cancelled"  # or "DeadlineExceeded": what the cancel raises
    deadline_spent: bool = False  # it continued as new from its deadline's compensation: no deadline after
    walker: Generator[Any, Any, Any] | None = None
    waiting: Waiting | None = None
    trace: dict[tuple[int, int], Outcome] = field(default_factory=dict)
    positions: int = 0  # history entries of this generation: what workflow_info().position reads


class Leaves:
    """The requests' half of :class:`~.model_runs.Runs` (which provides the methods declared here)."""

    world: Model
    lost: Lost
    all: dict[str, Run]
    executed: dict[str, list[int]]
    atomic_done: list[str]

    def met(self, situation: str) -> None:
        """Note a composition this case exercises (coverage, and the shapes of known bugs)."""
        self.world.shapes.add(situation)

    def advance(self, run: Run) -> None:
        raise NotImplementedError

    def create(
        self, scope: str, program: Program, parent: Run | None, timeout: int | None = None, position: int = 0
    ) -> Run:
        raise NotImplementedError

    def request_cancel(self, run: Run) -> None:
        raise NotImplementedError

    # Opening requests.
    def open(self, run: Run, request: rq.Leaf | rq.Group) -> None:
        kind, leaves = (request.kind, request.leaves) if isinstance(request, rq.Group) else ("leaf", (request,))
        first = run.positions - len(leaves)  # the request took its positions as it was yielded
        slots = [Slot(leaf, position=first + index) for index, leaf in enumerate(leaves)]
        run.waiting = Waiting(kind, slots)
        if kind == "any_of":
            winner = next((s for s in slots if isinstance(s.leaf, WAITS) and self.has_signal(run, s.leaf)), None)
            if winner is not None:
                # A buffered signal settles the group as it opens: the other leaves lose before they
                # start (docs/parallel.md: "a step never runs, a child never starts, another wait
                # takes nothing").
                self.take(run, winner)
                for slot in slots:
                    if isinstance(slot.leaf, rq.Step):
                        self.met("any_of-settled-at-open-beside-a-step")
                    if isinstance(slot.leaf, rq.Child):
                        self.met("any_of-settled-at-open-beside-a-child")
                self.note_losers(run, slots, winner)
                self.cancel_slots([s for s in slots if s is not winner])
                return
        for slot in slots:  # waits take what is already in the inbox, oldest first, in leaf order
            if isinstance(slot.leaf, WAITS) and self.take(run, slot):
                self.met("wait-took-a-signal-sent-before-it")
            else:
                self.start_leaf(run, slot)

    def start_leaf(self, run: Run, slot: Slot) -> None:
        leaf, world = slot.leaf, self.world
        if isinstance(leaf, rq.Step):
            world.soon(lambda: self.attempt(run, slot))
        elif isinstance(leaf, rq.Sleep):
            slot.timer = world.timer(leaf.seconds, lambda: self.settle(run, slot, None))
        elif isinstance(leaf, WAITS) and leaf.timeout is not None:
            slot.timer = world.timer(leaf.timeout, lambda: self.time_out(run, slot))
        if slot.timer is not None and slot.timer.due <= world.clock:  # a zero duration is due at once
            world.drop(slot.timer)
            fire = slot.timer.fire
            world.soon(lambda: None if slot.state != "pending" else fire())
        elif isinstance(leaf, rq.Child):
            if run.gen > 0:
                self.met("child-after-continue-as-new")
            self.create(leaf.scope, leaf.program, parent=run, timeout=leaf.timeout, position=slot.position)

    def settle(self, run: Run, slot: Slot, value: Any) -> None:
        if slot.state == "pending":
            slot.state, slot.value, slot.timer = "done", value, None
            self.advance(run)

    def time_out(self, run: Run, slot: Slot) -> None:
        # "A wait whose timeout came due while a matching signal was already in the inbox takes the signal."
        slot.timer = None
        self.met("wait-timed-out")
        if slot.state != "pending":
            return self.advance(run)
        if self.take(run, slot):
            self.met("timeout-with-a-signal-in-the-inbox")
            return self.advance(run)
        self.settle(run, slot, slot.leaf.default if isinstance(slot.leaf, rq.WaitUpdate) else None)

    # Signals.
    def has_signal(self, run: Run, wait: rq.Wait | rq.WaitUpdate) -> bool:
        if isinstance(wait, rq.WaitUpdate):
            return any(update.name == wait.name for update in run.updates)
        return any(name == wait.name for name, _ in run.inbox)

    def take(self, run: Run, slot: Slot) -> bool:
        """The wait takes the oldest unconsumed signal (or update) of its name, if there is one."""
        leaf = slot.leaf
        assert isinstance(leaf, WAITS)
        if isinstance(leaf, rq.WaitUpdate):
            found = next((update for update in run.updates if update.name == leaf.name), None)
            if found is None:
                return False
            run.updates.remove(found)
            run.taken.append(found.update_id)
            value: Any = found
        else:
            index = next((i for i, (name, _) in enumerate(run.inbox) if name == leaf.name), None)
            if index is None:
                return False
            value = run.inbox.pop(index)[1]
        self.world.drop(slot.timer)
        slot.state, slot.value, slot.timer = "done", value, None
        return True

    def note_losers(self, run: Run, slots: list[Slot], winner: Slot) -> None:
        pending_waits = [s for s in slots if s is not winner and s.state == "pending" and isinstance(s.leaf, WAITS)]
        if any(self.has_signal(run, s.leaf) for s in pending_waits if isinstance(s.leaf, WAITS)):
            self.met("any_of-loser-wait-with-a-signal")

    # Deciding.
    def resolve(self, run: Run) -> tuple[Any, BaseException | None] | None:
        """What the waiting yield returns now, or None while it still waits."""
        assert run.waiting is not None
        kind, slots = run.waiting.kind, run.waiting.slots
        for slot in slots:  # children that ended are collected first: that needs no choice
            self.collect_child(slot)
        if kind == "any_of":
            # "[index, value] of the first to finish; if several had finished before the run advanced,
            # the lowest index wins; losers are cancelled", and a losing wait takes no signal.
            finished = [slot for slot in slots if slot.state in ("done", "failed")]
            for index, slot in enumerate(slots):
                if slot.state in ("done", "failed") or (isinstance(slot.leaf, WAITS) and self.take(run, slot)):
                    self.met(f"any_of-won-by-{type(slot.leaf).__name__.lower()}-{slot.state}")
                    if finished and slot not in finished:  # a buffered signal beat what just finished
                        self.met("any_of-buffered-signal-beats-a-later-leaf")
                    self.note_losers(run, slots, slot)
                    self.cancel_slots(slots)
                    run.waiting = None
                    return self.outcome(slot, index)
            return None
        failed = next((slot for slot in slots if slot.state == "failed"), None)
        if failed is None:
            for slot in slots:
                if slot.state == "pending" and isinstance(slot.leaf, WAITS):
                    self.take(run, slot)
        else:  # "the first failure recorded is raised at once and the pending others are cancelled"
            if kind == "all_of":
                self.met("all_of-failed")
            self.cancel_slots(slots)
            run.waiting = None
            return self.outcome(failed, None)
        if any(slot.state != "done" for slot in slots):
            return None
        run.waiting = None
        values = [slot.value for slot in slots]
        return (values if kind == "all_of" else values[0]), None

    def outcome(self, slot: Slot, index: int | None) -> tuple[Any, BaseException | None]:
        if slot.state == "failed":
            return None, rq.ERRORS[slot.error]()
        return (slot.value if index is None else [index, slot.value]), None

    def collect_child(self, slot: Slot) -> None:
        if slot.state != "pending" or not isinstance(slot.leaf, rq.Child):
            return
        child = self.all[slot.leaf.scope]
        if child.status in FINISHED:
            self.met(f"child-{child.status}")
        if child.status == "completed":
            slot.state, slot.value = "done", child.result
        elif child.status in FINISHED:  # a failed or cancelled child: ChildFailed
            slot.state, slot.error = "failed", "ChildFailed"

    def cancel_slots(self, slots: list[Slot]) -> None:
        """A step not started never runs, a timer is dropped, a wait takes nothing, a child is cancelled."""
        for slot in slots:
            if slot.state != "pending":
                continue
            slot.state = "cancelled"
            self.world.drop(slot.timer)
            slot.timer = None
            if isinstance(slot.leaf, rq.Child) and slot.leaf.scope in self.all:
                self.met("child-cancelled-with-its-request")
                self.request_cancel(self.all[slot.leaf.scope])

    # Steps.
    def attempt(self, run: Run, slot: Slot) -> None:
        """One attempt of a step; its outcome is recorded and the run advances in the same breath."""
        leaf = slot.leaf
        assert isinstance(leaf, rq.Step)
        slot.timer = None
        if slot.state != "pending" or run.status in FINISHED:
            return
        policy = POLICIES[leaf.policy]
        slot.attempts += 1
        number = slot.attempts
        if number > policy.max_attempts:  # every attempt's worker died: the step fails (WorkerLost)
            assert run.waiting is not None
            if sum(isinstance(other.leaf, rq.Step) for other in run.waiting.slots) > 1:
                self.world.unsure("kills failed a step of a group of steps: when the others stop is up to timing")
            return self.step_ended(run, slot, ok=False)
        if self.lost.get((leaf.tag, number), True):  # its body ran (a kill may come before it starts)
            self.executed.setdefault(leaf.tag, []).append(number)
        if number > 1:
            self.met(f"step-attempt-{number}")
        if (leaf.tag, number) in self.lost:  # its worker died: the next attempt comes at once
            self.met("attempt-lost")
            if leaf.do[0] == "cancels":
                self.world.unsure("a step that cancels its run lost an attempt: did it cancel before it died?")
            self.world.soon(lambda: self.attempt(run, slot))
            return
        do = leaf.do
        if do[0] == "cancels":  # the run's cancel lands while this attempt runs
            self.met("cancel-while-a-step-runs")
            self.request_cancel(run)
            do = do[1:]
        verdict = do[0]
        if verdict == "ok" or (verdict == "flaky" and number > do[1]):
            slot.value = f"{leaf.tag}@{number}"
            if leaf.kind == "atomic":
                self.atomic_done.append(leaf.tag)
            return self.step_ended(run, slot, ok=True)
        # "If a step attempt is running when cancel lands, its outcome is recorded, no further attempt
        # starts, and Cancelled is raised at that step's yield" (step_ended advances, which raises it).
        if verdict == "fatal" or number >= policy.max_attempts or run.cancel == "requested":
            return self.step_ended(run, slot, ok=False)
        delay = policy.delay_after(number)
        if delay == 0:
            self.world.soon(lambda: self.attempt(run, slot))
        else:  # waiting in backoff counts as not running: a cancel cancels it at once
            slot.timer = self.world.timer(delay, lambda: self.attempt(run, slot))

    def step_ended(self, run: Run, slot: Slot, ok: bool) -> None:
        slot.state = "done" if ok else "failed"
        slot.error = "" if ok else "StepFailed"
        self.advance(run)
