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

    def __init__(self, world: Model, lost: Lost) -> None:
        self.world = world
        self.lost = lost  # (step tag, attempt) whose worker died before its outcome was recorded -> its body ran
        self.all: dict[str, Run] = {}
        self.executed: dict[str, list[int]] = {}
        self.atomic_done: list[str] = []

    def get(self, scope: str) -> Run | None:
        return self.all.get(scope)

    def create(self, scope: str, program: Program, parent: Run | None) -> Run:
        run = self.all[scope] = Run(scope, program, parent)
        self.world.soon(lambda: self.start(run))
        return run

    def start(self, run: Run) -> None:
        """A run's first advance, or its new generation's."""
        if run.status in FINISHED:
            return
        run.status = "running"

        def observe(scope: str, gen: int, index: int, outcome: Outcome) -> None:
            run.trace[(gen, index)] = outcome

        def info() -> list[Any]:
            # "position: the history position the next request takes (an all_of of n requests takes 1 + n)".
            return [run.positions, run.gen, run.parent is not None]

        run.positions = 0  # "a new generation starts an empty history"
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
            except rq.Cancelled:
                return self.finish(run, "cancelled", error="Cancelled")
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
            elif isinstance(request, rq.Patched):
                value = True  # no run predates a patch here: every run takes the new branch
            elif isinstance(request, rq.ContinueAsNew):
                return self.continue_as_new(run, request.gen)
            elif run.cancel == "requested":
                # "Cancel before the first yield: Cancelled at the first yield, whose request never starts."
                self.met("cancel-before-the-request-starts")
                run.cancel = "delivered"
                error = rq.Cancelled()
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
            return self.resume(run, error=rq.Cancelled())
        outcome = self.resolve(run)
        if outcome is None:
            return self.update_status(run)
        self.resume(run, *outcome)

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
        if run.parent is not None:  # the parent pulls the child's outcome when it next advances
            parent = run.parent
            self.world.soon(lambda: self.advance(parent))

    def continue_as_new(self, run: Run, gen: int) -> None:
        """A new generation: empty history, same inbox; "a delivered cancel is not raised again"."""
        if run.inbox:
            self.met("continue-as-new-keeps-signals")
        if run.cancel == "delivered":
            self.met("continue-as-new-after-cancel")
            run.cancel = "none"
        assert run.walker is not None
        run.walker.close()
        run.gen, run.walker, run.waiting, run.status = gen, None, None, "running"
        self.world.soon(lambda: self.start(run))

    def request_cancel(self, run: Run) -> None:
        """Only the first cancel counts ("a second cancel changes nothing")."""
        if run.status not in FINISHED and run.cancel != "none":
            self.met("second-cancel")
        if run.status not in FINISHED and run.cancel == "none":
            run.cancel = "requested"
            self.world.soon(lambda: self.advance(run))
