"""Runs in the reference model: starting, feeding the workflow what its yield returns, cancelling,
continuing as new and finishing. How each request is carried out is :mod:`.model_leaves`.
Every rule is a sentence of the contract; the comments quote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import model_requests as rq
from .model_leaves import FINISHED, Leaves, Lost, Run, Waiting
from .program import Program
from .walker import Outcome, walk

if TYPE_CHECKING:
    from .model import Model

__all__ = ["FINISHED", "Lost", "Run", "Runs"]


class Runs(Leaves):
    """Every run of the world, and the life of each: start, feed the workflow, cancel, continue, finish."""

    def __init__(self, world: Model, lost: Lost, suggest_after: int) -> None:
        self.world = world
        self.suggest_after = suggest_after  # DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER (docs: 10,000)
        self.answers: dict[str, list[str]] = {}  # update id -> [verdict, text], once answered
        self.lost = lost  # (step tag, attempt) whose worker died before its outcome was recorded -> its body ran
        self.all: dict[str, Run] = {}
        self.executed: dict[str, list[int]] = {}
        self.atomic_done: list[str] = []

    def get(self, scope: str) -> Run | None:
        return self.all.get(scope)

    def create(
        self, scope: str, program: Program, parent: Run | None, timeout: int | None = None, position: int = 0
    ) -> Run:
        run = self.all[scope] = Run(scope, program, parent)
        if parent is None:
            run.wid, timeout = "~", program.get("timeout")
        else:  # "<parent workflow_id>/<position>, or <parent>/<generation>.<position> once it continued as new"
            run.wid = f"{parent.wid}/{position}" if parent.gen == 0 else f"{parent.wid}/{parent.gen}.{position}"
        self.world.soon(lambda: self.start(run))
        self.arm_deadline(run, timeout)
        return run

    # Deadlines (docs/cancellation.md#deadlines).
    def arm_deadline(self, run: Run, timeout: int | None) -> None:
        """ "The deadline is the clock at start() plus the timeout"; a child's "is its own timeout from
        when it starts, and never later than its parent's: a child with no timeout of its own gets its
        parent's deadline"; "a deadline that has passed is not inherited" (a child the compensation
        starts runs normally)."""
        clock = self.world.clock
        own = None if timeout is None else clock + timeout
        inherited = None if run.parent is None else run.parent.deadline
        if run.parent is not None and run.parent.deadline_spent:
            self.met("child-of-a-run-whose-deadline-is-spent")
        if inherited is not None and inherited <= clock:
            self.met("child-started-after-its-parents-deadline")
            inherited = None
        if inherited is not None:
            self.met("child-inherits-a-deadline" if own is None or inherited < own else "child-with-its-own-deadline")
        candidates = [when for when in (own, inherited) if when is not None]
        if not candidates:
            return
        run.deadline = min(candidates)
        run.deadline_timer = self.world.timer(run.deadline - clock, lambda: self.deadline_passed(run))

    def deadline_passed(self, run: Run) -> None:
        """ "DeadlineExceeded is raised at the yield where the run waits, exactly as a cancel() would be";
        "only the first of cancel() and the deadline counts"."""
        run.deadline_timer = None
        if run.status in FINISHED:
            return
        self.met(f"deadline-passed-while-{run.status}")
        self.request_cancel(run, reason="DeadlineExceeded")

    def start(self, run: Run) -> None:
        """A run's first advance, or its new generation's."""
        if run.status in FINISHED:
            return
        run.status = "running"

        def observe(scope: str, gen: int, index: int, outcome: Outcome) -> None:
            run.trace[(gen, index)] = outcome

        def info() -> list[Any]:
            # "position: the history position the next request takes (an all_of of n requests takes 1 + n)";
            # "history_length: the same number"; "continue_as_new_suggested: True once history_length
            # reaches DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER".
            parent = None if run.parent is None else run.parent.wid
            suggested = run.positions >= self.suggest_after
            return [run.positions, run.positions, run.gen, run.wid, parent, suggested]

        run.positions = 0  # "a new generation starts an empty history"
        run.taken = []
        run.walker = walk(run.program, run.scope, run.gen, rq.ModelVocabulary(observe, info))
        self.resume(run, first=True)

    # Feeding the workflow.
    def resume(self, run: Run, value: Any = None, error: BaseException | None = None, first: bool = False) -> None:
        """Send ``value`` (or throw ``error``) into the workflow; carry out what it yields until it waits or ends."""
        assert run.walker is not None
        while True:
            try:
                if first:
                    request = next(run.walker)
                    first = False
                elif error is not None:
                    request = run.walker.throw(error)
                else:
                    request = run.walker.send(value)
            except StopIteration as stop:
                return self.finish(run, "completed", result=stop.value)
            except rq.Cancelled as cancelled:  # its type: Cancelled, or DeadlineExceeded
                return self.finish(run, "cancelled", error=type(cancelled).__name__)
            except (rq.StepFailed, rq.ChildFailed) as failure:
                return self.finish(run, "failed", error=type(failure).__name__)
            value, error = None, None
            # Every request takes its positions as it is yielded, started or not (a cancelled one too).
            if isinstance(request, rq.Group):
                run.positions += 1 + len(request.leaves)
            elif not isinstance(request, rq.ContinueAsNew):
                run.positions += 1
            if isinstance(request, rq.SetState):
                run.state = request.value
            elif isinstance(request, rq.Answer):  # "recorded in history", and waits for nothing, as set_state
                self.answer(run, request)
            elif isinstance(request, rq.Patched):
                value = True  # no run predates a patch here: every run takes the new branch
            elif isinstance(request, rq.ContinueAsNew):
                return self.continue_as_new(run, request.gen)
            elif run.cancel == "requested":
                # "Cancel before the first yield: Cancelled at the first yield, whose request never starts."
                self.met("cancel-before-the-request-starts")
                run.cancel = "delivered"
                error = self.cancel_error(run)
            else:
                self.open(run, request)
                outcome = self.resolve(run)
                if outcome is None:
                    return self.update_status(run)
                value, error = outcome

    def advance(self, run: Run) -> None:
        """Something the run may wait for happened: decide what the waiting yield returns, if anything yet."""
        if run.status in FINISHED or run.waiting is None:
            return
        if run.cancel == "requested":
            # "Cancelled is raised at the yield the run waits on"; what it waited for is cancelled.
            run.cancel = "delivered"
            self.met_cancel(run.waiting)
            self.cancel_slots(run.waiting.slots)
            run.waiting = None
            return self.resume(run, error=self.cancel_error(run))
        outcome = self.resolve(run)
        if outcome is None:
            return self.update_status(run)
        self.resume(run, *outcome)

    def cancel_error(self, run: Run) -> rq.Cancelled:
        if run.cancel_reason == "DeadlineExceeded":
            self.met("deadline-raised")
            return rq.DeadlineExceeded()
        return rq.Cancelled()

    def met_cancel(self, waiting: Waiting) -> None:
        pending = [slot for slot in waiting.slots if slot.state == "pending"]
        if waiting.kind != "leaf":
            self.met(f"cancel-at-{waiting.kind}")
        for slot in pending:
            what = type(slot.leaf).__name__.lower()
            self.met(f"cancel-at-{what}-in-backoff" if isinstance(slot.leaf, rq.Step) else f"cancel-at-{what}")

    def update_status(self, run: Run) -> None:
        """ "running" while a step or child is pending, "waiting" when only timers and signals are."""
        assert run.waiting is not None
        busy = any(s.state == "pending" and isinstance(s.leaf, rq.Step | rq.Child) for s in run.waiting.slots)
        run.status = "running" if busy else "waiting"

    def finish(self, run: Run, status: str, result: Any = None, error: str | None = None) -> None:
        run.status, run.result, run.error = status, result, error
        run.walker, run.waiting = None, None
        self.world.drop(run.deadline_timer)
        run.deadline_timer = None
        if run.parent is not None:  # the parent pulls the child's outcome when it next advances
            parent = run.parent
            self.world.soon(lambda: self.advance(parent))

    def continue_as_new(self, run: Run, gen: int) -> None:
        """A new generation: empty history, same inbox; "a delivered cancel is not raised again"."""
        if run.inbox or run.updates:
            self.met("continue-as-new-keeps-signals")
        self.reject_taken(run)
        if run.cancel == "delivered" and run.cancel_reason == "DeadlineExceeded":
            # "A generation that continues as new from its compensation starts with no deadline":
            # the deadline passed and was raised; it is spent, for this run's later generations too.
            self.met("continue-as-new-after-the-deadline")
            run.deadline, run.deadline_spent = None, True
        elif run.deadline_spent:
            self.met("continue-as-new-again-after-a-spent-deadline")
        elif run.cancel == "delivered" and run.deadline is not None:
            # "The deadline spans continue-as-new", yet "a run cancelled before its deadline gets plain
            # Cancelled, and its deadline changes nothing after": the docs do not say which wins here.
            self.world.unsure("a run with a deadline continued as new after a plain cancel")
        if run.cancel == "delivered":
            self.met("continue-as-new-after-cancel")
            run.cancel, run.cancel_reason = "none", "Cancelled"
        assert run.walker is not None
        run.walker.close()
        run.gen, run.walker, run.waiting, run.status = gen, None, None, "running"
        self.world.soon(lambda: self.start(run))

    def request_cancel(self, run: Run, reason: str = "Cancelled") -> None:
        """Only the first cancel counts ("a second cancel changes nothing"), a deadline's too."""
        if run.status not in FINISHED and run.cancel != "none":
            self.met("second-cancel")
        if run.status not in FINISHED and run.cancel == "none":
            run.cancel, run.cancel_reason = "requested", reason
            self.world.soon(lambda: self.advance(run))

    # Updates (docs/updates.md).
    def answer(self, run: Run, request: rq.Answer) -> None:
        """ "reply(request, value) answers with value; reject(request, reason) rejects"; each is answered once."""
        update_id = request.request.update_id
        assert update_id in run.taken and update_id not in self.answers, f"{update_id} answered twice or not taken"
        self.met(f"update-{request.verdict}")
        self.answers[update_id] = [request.verdict, request.text]

    def reject_taken(self, run: Run) -> None:
        """At continue_as_new "every update this generation took and did not answer is rejected"."""
        for update_id in run.taken:
            if update_id not in self.answers:
                self.met("continue-as-new-rejects-a-taken-update")
                self.answers[update_id] = ["reject", CONTINUED]


#: The reason a rejection by continue_as_new is read as (the engine's text contains it).
CONTINUED = "continued as new"
