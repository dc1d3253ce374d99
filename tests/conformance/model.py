"""The reference model: what a program must do, given the events that reach it.

A small discrete-event simulation written from the documented semantics (issue 10's settled
ones where the docs differ). It shares no code with ``durable_django``: runs are
:class:`~.model_runs.Run` records driven by the walker with the model's own requests, time
is an integer clock, and work that is "due now" is a FIFO of actions. An event is applied,
then every action is carried out until none is left (the inline driver's
``run_until_idle()``); ``time`` fires each timer in due order, working in between (the
inline driver's ``pass_time()``).

The outcome is a :class:`Prediction`. Two things make a prediction unsafe, and the model
says so in ``ambiguous`` instead of guessing: two timers due within :data:`MARGIN` of each
other or of the end of a ``time`` event (their order in the real system could depend on
milliseconds of real time), and step attempts lost to a kill in a group where that changes
which leaf decides (see :meth:`~.model_leaves.Leaves.attempt`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import model_requests as rq
from .model_runs import FINISHED, Lost, Run, Runs
from .program import VALIDATED, Program, refusal

#: Timers closer than this (in model seconds) are too close to call.
MARGIN = 600
#: Actions one event may cause at most: a model that loops is a bug in the model.
MAX_ACTIONS = 100_000
#: DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER's documented default.
SUGGESTED_AFTER = 10_000

Event = dict[str, Any]


@dataclass
class Timer:
    due: int
    order: int
    fire: Callable[[], None]


@dataclass
class Prediction:
    """Everything the real run is checked against."""

    runs: dict[str, dict[str, Any]]  # scope -> status, result, error, state, gen, inbox
    traces: dict[str, list[list[Any]]]  # scope -> [gen, index, outcome] in order
    attempts: dict[str, list[int]]  # step tag -> attempt numbers that ran its body
    atomic: dict[str, int]  # atomic step tag -> rows its successful attempt committed (1)
    #: Per event: "ok", "finished" (RunFinished), "absent" (no such run), or "rejected:<reason>" (an
    #: update its validator refused).
    replies: list[str]
    #: Update id -> what its caller gets: ["reply", value], ["rejected", reason], ["finished"] (the run
    #: ended without answering: RunFinished), ["pending"] (no answer yet), ["refused"] (never sent).
    updates: dict[str, list[Any]] = field(default_factory=dict)
    ambiguous: str | None = None
    shapes: set[str] = field(default_factory=set)  # compositions met (see known_bugs)


class Model:
    """The world of one program: its root run, the children it starts, the clock and the work due."""

    def __init__(
        self, program: Program, root: str, lost: Lost | None = None, suggest_after: int = SUGGESTED_AFTER
    ) -> None:
        self.clock = 0
        self.timers: list[Timer] = []
        self._order = 0
        self.ready: deque[Callable[[], None]] = deque()
        self.ambiguous: str | None = None
        self.shapes: set[str] = set()
        self.replies: list[str] = []
        self.runs = Runs(self, lost or {}, suggest_after)
        self.sent: dict[str, Run] = {}  # update id -> the run it was sent to
        self.update_ids: list[str] = []  # every update event's id, in order
        self.root = root
        self.runs.create(root, program, parent=None)
        self.drain()

    # What the runs use.
    def soon(self, action: Callable[[], None]) -> None:
        """``action`` is due now: it runs before the world is idle again."""
        self.ready.append(action)

    def timer(self, seconds: int, fire: Callable[[], None]) -> Timer:
        self._order += 1
        timer = Timer(self.clock + seconds, self._order, fire)
        self.timers.append(timer)
        return timer

    def drop(self, timer: Timer | None) -> None:
        if timer is not None and timer in self.timers:
            self.timers.remove(timer)

    def unsure(self, why: str) -> None:
        self.ambiguous = self.ambiguous or why

    def drain(self) -> None:
        for _ in range(MAX_ACTIONS):
            if not self.ready:
                return
            self.ready.popleft()()
        raise RuntimeError(f"the model did not become idle within {MAX_ACTIONS} actions")

    # Events.
    def apply(self, event: Event) -> str:
        reply = self._apply(event)
        self.replies.append(reply)
        self.drain()
        return reply

    def _apply(self, event: Event) -> str:
        kind = event["ev"]
        if kind == "time":
            self._pass_time(event["seconds"])
            return "ok"
        if kind == "cache":  # a worker that lost its generators replays: nothing a run can see
            return "ok"
        if kind == "update":
            self.update_ids.append(event["id"])
        run = self.runs.get(self.root + event["to"])
        if run is None:
            return "absent"
        if kind == "update":
            return self._send_update(run, event)
        if run.status in FINISHED:
            self.shapes.add(f"{kind}-to-a-finished-run")
            return "finished"
        if run is not self.runs.all[self.root]:
            self.shapes.add(f"{kind}-to-a-child")
        if kind == "signal":
            for name, payload in event["signals"]:
                run.inbox.append((name, payload))
            self.soon(lambda: self.runs.advance(run))
            if event.get("late"):  # a timer comes due before any worker looks at the signals
                self._overdue(event["late"])
            return "ok"
        if kind == "cancel":
            self.runs.request_cancel(run)
            return "ok"
        raise ValueError(f"unknown event {event!r}")

    def _send_update(self, run: Run, event: Event) -> str:
        """docs/updates.md: "a call with an update_id the run already has sends nothing and returns the first
        answer"; the validator "run before anything is sent: if it raises, the update is rejected with its
        message and leaves no trace in the run"; else "sent like a signal", "refused with RunFinished if the
        run is completed, failed or cancelled"."""
        name, payload, update_id = event["name"], event["payload"], event["id"]
        if update_id in self.sent:
            self.shapes.add("update-retried-after-its-run-finished" if run.status in FINISHED else "update-retried")
            return "ok"
        refused = refusal(run.state, payload) if name == VALIDATED else None
        if run.status in FINISHED:
            if refused is not None:
                self.unsure("an update its validator refuses, to a finished run: the docs do not order the two")
            self.shapes.add("update-to-a-finished-run")
            return "finished"
        if refused is not None:
            self.shapes.add("update-refused-by-its-validator")
            return f"rejected:{refused}"
        if run is not self.runs.all[self.root]:
            self.shapes.add("update-to-a-child")
        self.sent[update_id] = run
        run.updates.append(rq.UpdateRequest(update_id, name, payload))
        self.soon(lambda: self.runs.advance(run))
        return "ok"

    def _pass_time(self, seconds: int) -> None:
        end = self.clock + seconds
        while True:
            due = [timer for timer in self.timers if timer.due <= end]
            if not due:
                break
            timer = min(due, key=lambda t: (t.due, t.order))
            self._check_margin(timer.due, timer)
            self.timers.remove(timer)
            self.clock = timer.due
            timer.fire()
            self.drain()
        self._check_margin(end, None)
        self.clock = end

    def _overdue(self, seconds: int) -> None:
        """Every timer ``seconds`` sooner; one now overdue fires first, then the work it finds due (``late``).

        As the in-process driver has it: the overdue timer (its firing, and the advance of its
        run) comes before the work already due (the signal's advance), which comes before the
        work either of them causes (a cancel that cascades to a child, say).
        """
        for timer in self.timers:
            timer.due -= seconds
        for run in self.runs.all.values():  # a deadline is a timer too
            run.deadline = None if run.deadline is None else run.deadline - seconds
        due = sorted((timer for timer in self.timers if timer.due <= self.clock), key=lambda t: (t.due, t.order))
        if len(due) > 1:
            self.unsure("several timers came due at once while no worker looked")
        self._check_margin(self.clock, None)
        for timer in due:
            self.timers.remove(timer)
            timer.fire()

    def _check_margin(self, when: int, besides: Timer | None) -> None:
        if any(abs(timer.due - when) < MARGIN for timer in self.timers if timer is not besides):
            self.unsure(f"two timers (or a timer and the end of a time event) within {MARGIN} s of t={when}")

    # The outcome.
    def prediction(self) -> Prediction:
        return Prediction(
            runs={scope: _view(run) for scope, run in self.runs.all.items()},
            traces={
                scope: sorted([g, i, o] for (g, i), o in run.trace.items()) for scope, run in self.runs.all.items()
            },
            attempts={tag: list(numbers) for tag, numbers in self.runs.executed.items()},
            atomic=dict.fromkeys(self.runs.atomic_done, 1),
            replies=list(self.replies),
            updates={update_id: self._caller_gets(update_id) for update_id in self.update_ids},
            ambiguous=self.ambiguous,
            shapes=set(self.shapes),
        )

    def _caller_gets(self, update_id: str) -> list[Any]:
        """ "It returns the reply, or raises UpdateRejected, ..., or RunFinished if the run ends without answering"."""
        run = self.sent.get(update_id)
        if run is None:
            return ["refused"]
        answer = self.runs.answers.get(update_id)
        if answer is not None:
            verdict, text = answer
            return ["reply", text] if verdict == "reply" else ["rejected", text]
        return ["finished"] if run.status in FINISHED else ["pending"]


def _view(run: Run) -> dict[str, Any]:
    return {
        "status": run.status,
        "result": run.result,
        "error": run.error,
        "state": run.state,
        "gen": run.gen,
        "inbox": [[name, payload] for name, payload in run.inbox],
        "updates": [[update.name, update.payload] for update in run.updates],
    }


def predict(
    program: Program, events: list[Event], root: str, lost: Lost | None = None, suggest_after: int = SUGGESTED_AFTER
) -> Prediction:
    """What ``program`` started as run ``root``, then ``events`` one by one, must do."""
    model = Model(program, root, lost, suggest_after)
    for event in events:
        model.apply(event)
    return model.prediction()
