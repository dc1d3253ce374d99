"""Random event schedules, drawn while the model runs them, so that events tend to matter.

Each event is chosen looking at the model's world as it is at that point: a signal usually
goes to a live run and names a signal one of its waits is waiting for; time usually
passes just beyond the next timer; some signals and cancels go to runs that have finished
(the real system must refuse them with ``RunFinished``). The model is only looked at, never
trusted: the real system is checked against a fresh prediction.
"""

from __future__ import annotations

from typing import Any

from .generate import SIGNALS, UPDATES, Chooser, ProgramGenerator, chance, weighted
from .model import MARGIN, Event, Model
from .model_requests import Step, Wait, WaitUpdate
from .model_runs import FINISHED, Run
from .program import Program, statements


def events(chooser: Chooser, program: Program, root: str, most: int = 12, late: bool = False) -> list[Event]:
    """A schedule: signals (one or a burst), updates (now and then a retried one), cancels, time passing,
    and loss of the generator cache.

    With ``late``, some signals come with time that passes before a worker looks at them (a
    timer comes due meanwhile): in-process only, where "before a worker looks" is certain.
    """
    model = Model(program, root)
    schedule: list[Event] = []
    payload = 0
    sent: list[Event] = []  # update events so far: a retried call repeats one
    for _ in range(chooser.integer(0, most)):
        if all(run.status in FINISHED for run in model.runs.all.values()) and chance(chooser, 80):
            break  # once every run has finished, an event or two is enough to see them refused
        kind = weighted(chooser, _weights(model))
        if kind == "signal":
            run = _target(chooser, model)
            burst = []
            for _ in range(_burst_size(chooser, run)):
                payload += 1
                burst.append([_name(chooser, run), _payload(chooser, payload)])
            event: Event = {"ev": "signal", "to": run.scope[len(root) :], "signals": burst}
            overdue = _late(chooser, model) if late and chance(chooser, 20) else None
            if overdue:
                event["late"] = overdue
        elif kind == "update" and sent and chance(chooser, 15):  # a retried call: same id, same update
            event = dict(chooser.choice(sent))
        elif kind == "update":
            run = _target(chooser, model)
            payload += 1
            name = _update_name(chooser, run)
            event = {"ev": "update", "to": run.scope[len(root) :], "name": name, "id": f"u{payload}"}
            event["payload"] = _payload(chooser, payload)
            sent.append(event)
        elif kind == "cancel":
            event = {"ev": "cancel", "to": _target(chooser, model).scope[len(root) :]}
        elif kind == "time":
            event = {"ev": "time", "seconds": _duration(chooser, model)}
        else:
            event = {"ev": "cache"}
        model.apply(event)
        schedule.append(event)
    if chance(chooser, 50):  # let everything that waits for time come due
        schedule.append({"ev": "time", "seconds": 60 * 86400})
    return schedule


def _weights(model: Model) -> dict[str, int]:
    """Cancels are likelier where they are interesting: a step in backoff, a compensation under way."""
    weights = {"signal": 42, "time": 30, "cache": 10, "cancel": 8, "update": 4}
    if any(stmt["op"] == "update" for stmt in statements(model.runs.all[model.root].program["body"])):
        weights["update"] = 20
    for run in model.runs.all.values():
        if run.status in FINISHED:
            continue
        if run.cancel == "delivered":
            weights["cancel"] += 10
        if run.waiting and any(s.state == "pending" and isinstance(s.leaf, Step) for s in run.waiting.slots):
            weights["cancel"] += 15  # in inline mode a pending step is one waiting in backoff
    return weights


def _target(chooser: Chooser, model: Model) -> Run:
    """The root most often; else a live child; now and then any run, finished ones included."""
    runs = list(model.runs.all.values())
    live = [run for run in runs[1:] if run.status not in FINISHED]
    if chance(chooser, 10):
        return chooser.choice(runs)
    if live and chance(chooser, 30):
        return chooser.choice(live)
    return runs[0]


def _burst_size(chooser: Chooser, run: Run) -> int:
    """Mostly one signal, sometimes a few; a flood (more than one advance takes) for a long signal loop."""
    long_loop = any(stmt["op"] == "loop" and stmt["times"] > 100 for stmt in statements(run.program["body"]))
    if long_loop and chance(chooser, 30):
        return chooser.integer(100, 140)
    return 1 if chance(chooser, 75) else chooser.integer(2, 3)


def _payload(chooser: Chooser, number: int) -> Any:
    """Mostly the signal's number (so the trace shows which signal a wait took); now and then none, or a dict."""
    roll = chooser.integer(0, 9)
    return None if roll == 0 else {"n": number} if roll == 1 else number


def _name(chooser: Chooser, run: Run) -> str:
    """Mostly a name one of the run's waits waits for now, when it has any."""
    waited = []
    if run.waiting is not None:
        waited = [s.leaf.name for s in run.waiting.slots if s.state == "pending" and isinstance(s.leaf, Wait)]
    if waited and chance(chooser, 70):
        return chooser.choice(waited)
    return chooser.choice(SIGNALS)


def _update_name(chooser: Chooser, run: Run) -> str:
    """Mostly a name one of the run's update waits waits for now, when it has any."""
    waited = []
    if run.waiting is not None:
        waited = [s.leaf.name for s in run.waiting.slots if s.state == "pending" and isinstance(s.leaf, WaitUpdate)]
    if waited and chance(chooser, 70):
        return chooser.choice(waited)
    return chooser.choice(UPDATES)


def _duration(chooser: Chooser, model: Model) -> int:
    """Mostly just past the next timer (clear of the model's margin), else any time up to three days."""
    if model.timers and chance(chooser, 65):
        due = min(timer.due for timer in model.timers)
        return max(60, due - model.clock + 60 * chooser.integer(MARGIN // 60 + 1, 180))
    return chooser.integer(10, 4320) * 60


def _late(chooser: Chooser, model: Model) -> int | None:
    """Time that brings exactly the next timer due (clear of the margin on both sides), if there is one."""
    dues = sorted(timer.due - model.clock for timer in model.timers)
    if not dues:
        return None
    low, high = dues[0] + MARGIN + 60, (dues[1] - MARGIN - 60 if len(dues) > 1 else dues[0] + 86400)
    return chooser.integer(low // 60, high // 60) * 60 if low < high else None


def case(chooser: Chooser, root: str = "R", late: bool = False) -> tuple[Program, list[Event]]:
    program = ProgramGenerator(chooser).program()
    return program, events(chooser, program, root, late=late)
