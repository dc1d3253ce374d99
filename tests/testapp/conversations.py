"""Workflows of issue 12's second round: workflow info, the clock and ids, deadlines, updates."""

from __future__ import annotations

import durable_django as durable

from .workflows import double


@durable.workflow(name="tests.info_reader")
def info_reader():
    info = durable.workflow_info()
    seen = [info.workflow_id, info.position, durable.now().isoformat(), str(durable.uuid4())]
    yield double(1)  # a step on the worker: its result is fed to the live generator
    seen += [durable.workflow_info().position, durable.now().isoformat(), str(durable.uuid4())]
    yield double(2)
    yield durable.wait_signal("finish")
    return seen


@durable.workflow(name="tests.info_child")
def info_child():
    yield double(0)
    info = durable.workflow_info()
    return [info.parent_workflow_id, info.workflow_id]


@durable.workflow(name="tests.info_looper")
def info_looper(rounds: int):
    yield double(rounds)
    info = durable.workflow_info()
    if info.continue_as_new_suggested and rounds:
        yield durable.continue_as_new(rounds - 1)
    child = yield info_child()
    return {"generation": info.generation, "suggested": info.continue_as_new_suggested, "child": child}
