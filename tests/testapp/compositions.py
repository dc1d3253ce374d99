"""Workflows where two features meet: the shapes of issue 10's findings, and more."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import durable_django as durable

from .models import Counter
from .workflows import bump, double, flaky


@durable.step(name="tests.touch")
def touch(name: str) -> int:
    """An external step with an effect a test can count: it runs outside the recording transaction."""
    counter, _ = Counter.objects.get_or_create(name=name)
    Counter.objects.filter(pk=counter.pk).update(value=counter.value + 1)
    return counter.value + 1


@durable.workflow(name="tests.race_two_waits")
def race_two_waits():
    first = yield durable.any_of(durable.wait_signal("a"), durable.wait_signal("b"))
    later = yield durable.wait_signal("b", timeout=timedelta(hours=1))
    return {"first": first, "later": later}


@durable.workflow(name="tests.submit_loop")
def submit_loop():
    submitted = []
    while True:
        index, value = yield durable.any_of(durable.wait_signal("submit"), durable.wait_signal("exit"))
        if index == 1:
            return {"submitted": submitted, "exit": value}
        submitted.append(value)


@durable.workflow(name="tests.step_or_signal")
def step_or_signal(counter: str):
    winner = yield durable.any_of(touch(counter), durable.wait_signal("go"))
    yield durable.sleep(timedelta(hours=1))  # the run waits on: the advance does not end it
    return winner


@durable.workflow(name="tests.votes")
def votes(count: int):
    return (yield durable.all_of(*[durable.wait_signal("vote") for _ in range(count)]))


@durable.workflow(name="tests.mailbox")
def mailbox(seconds: float):
    """Loops over a wait with a short timeout; returns every message it took."""
    taken = []
    while True:
        message = yield durable.wait_signal("msg", timeout=timedelta(seconds=seconds))
        if message is None:
            return taken
        taken.append(message)


@durable.workflow(name="tests.cleanup_in_finally")
def cleanup_in_finally(counter: str, fail_times: int = 0):
    try:
        return (yield flaky(fail_times))
    finally:
        yield bump(f"{counter}:cleanup")


@durable.workflow(name="tests.compensate_at_the_step")
def compensate_at_the_step(counter: str, fail_times: int = 0):
    try:
        value = yield flaky(fail_times)
    except durable.Cancelled:
        yield bump(f"{counter}:compensated")
        raise
    yield bump(f"{counter}:after")
    return value


@durable.workflow(name="tests.child_per_generation")
def child_per_generation(generation: int, last: int):
    value = yield child_of(generation)
    if generation < last:
        yield durable.continue_as_new(generation + 1, last)
    return value


@durable.workflow(name="tests.child_of")
def child_of(value: int):
    return (yield double(value))


@durable.workflow(name="tests.parent_of_waiter")
def parent_of_waiter():
    return (yield waiter())


@durable.workflow(name="tests.waiter")
def waiter():
    return (yield durable.wait_signal("never"))


@durable.workflow(name="tests.cancel_each_generation")
def cancel_each_generation(generation: int):
    try:
        yield durable.wait_signal("next")
    except durable.Cancelled:
        if generation == 0:
            yield durable.continue_as_new(generation + 1)
        raise
    return generation


@durable.workflow(name="tests.sleeper_past_year_9999")
def sleeper_past_year_9999(hours_west: int):
    """An instant the calendar holds locally but not in UTC (9999-12-31 23:00 at UTC-5 is year 10000)."""
    yield durable.sleep_until(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-hours_west))))
    return "woke"


@durable.workflow(name="tests.long_sleeper")
def long_sleeper():
    yield durable.sleep(timedelta.max)
    return "woke"


@durable.step(name="tests.import_rows", timeout=timedelta(seconds=120), heartbeat_timeout=timedelta(seconds=2))
def import_rows(name: str, total: int, pause: float) -> dict:
    """A long import that reports its offset and resumes from the last one reported."""
    import time

    context = durable.step_context()
    start = context.heartbeat_details or 0
    Counter.objects.get_or_create(name=f"{name}:attempts")
    Counter.objects.filter(name=f"{name}:attempts").update(value=context.attempt)
    for offset in range(start, total):
        counter, _ = Counter.objects.get_or_create(name=f"{name}:rows")
        Counter.objects.filter(pk=counter.pk).update(value=counter.value + 1)
        time.sleep(pause)
        if context.heartbeat(offset + 1):
            return {"stopped_at": offset + 1, "resumed_from": start}
    return {"imported": total, "resumed_from": start}


@durable.workflow(name="tests.importer")
def importer(name: str, total: int, pause: float = 0.0):
    return (yield import_rows(name, total, pause))


# One workflow per request shape, looping n times: the cost per request must not grow with n.
@durable.workflow(name="tests.loop_steps")
def loop_steps(n: int):
    for index in range(n):
        yield double(index)


@durable.workflow(name="tests.loop_all_of")
def loop_all_of(n: int):
    for index in range(n):
        yield durable.all_of(double(index), double(index + 1))


@durable.workflow(name="tests.loop_any_of")
def loop_any_of(n: int):
    for index in range(n):
        yield durable.any_of(double(index), durable.sleep(timedelta(hours=1)))


@durable.workflow(name="tests.loop_timers")
def loop_timers(n: int):
    for _ in range(n):
        yield durable.sleep(timedelta(0))


@durable.workflow(name="tests.loop_signals")
def loop_signals(n: int):
    for _ in range(n):
        yield durable.wait_signal("tick")


@durable.workflow(name="tests.loop_updates")
def loop_updates(n: int):
    for index in range(n):
        request = yield durable.wait_update("tick")
        yield durable.reply(request, index)


@durable.workflow(name="tests.loop_children")
def loop_children(n: int):
    for index in range(n):
        yield child_of(index)


@durable.workflow(name="tests.loop_atomic")
def loop_atomic(n: int, counter: str):
    for index in range(n):
        yield bump(counter)
        yield durable.set_state(index)  # not a step next: the one-statement path cannot take it


@durable.workflow(name="tests.routed_then_compensate")
def routed_then_compensate(counter: str):
    """Its step goes to another queue, so advancing here leaves it queued for a worker to claim."""
    from .workflows import routed

    try:
        return (yield routed())
    except durable.Cancelled:
        yield bump(f"{counter}:compensated")
        raise


TIMED_OUT = "timed out"  # the workflow's own sentinel: any object, it is never stored


@durable.workflow(name="tests.tell_timeout_apart")
def tell_timeout_apart():
    first = yield durable.wait_signal("ping", timeout=timedelta(minutes=1), default=TIMED_OUT)
    second = yield durable.wait_signal("ping", timeout=timedelta(minutes=1), default=TIMED_OUT)
    third = yield durable.all_of(durable.wait_signal("ping", timeout=timedelta(minutes=1), default=TIMED_OUT))
    return [first, second, third]


@durable.workflow(name="tests.sleeper_then_step")
def sleeper_then_step(counter: str):
    yield durable.sleep(timedelta(minutes=1))
    return (yield bump(counter))


# Workflows that misuse the API, for the bad-input catalog (tests/test_bad_input_catalog.py).
@durable.workflow(name="tests.yields_a_dict")
def yields_a_dict():
    yield {"step": "charge"}


@durable.workflow(name="tests.returns_a_set")
def returns_a_set():
    yield double(1)
    return {1, 2}


@durable.workflow(name="tests.starts_inside")
def starts_inside():
    from .workflows import echo_workflow

    echo_workflow.start(1)  # a side effect in workflow code: refused
    yield double(1)


@durable.workflow(name="tests.big_state")
def big_state(size: int):
    yield durable.set_state("x" * size)


@durable.step(name="tests.big_result")
def big_result(size: int) -> str:
    return "x" * size


@durable.workflow(name="tests.returns_big_result")
def returns_big_result(size: int):
    try:
        return (yield big_result(size))
    except durable.StepFailed as error:
        return {"type": error.error_type, "message": error.message}


@durable.step(name="tests.not_json_result")
def not_json_result(kind: str) -> object:
    return {"nan": float("nan"), "int-key": {1: "a"}, "nul": "a\x00b", "set": {1, 2}}[kind]


@durable.workflow(name="tests.returns_not_json_result")
def returns_not_json_result(kind: str):
    """The step's result is refused when it is recorded: the step fails at once, with no retry."""
    try:
        return (yield not_json_result(kind))
    except durable.StepFailed as error:
        return {"type": error.error_type, "message": error.message}


@durable.workflow(name="tests.swallows_cancel")
def swallows_cancel():
    try:
        yield durable.wait_signal("never")
    except durable.Cancelled:
        return "carried on"


@durable.workflow(name="tests.yields_in_finally")
def yields_in_finally(counter: str):
    try:
        yield durable.wait_signal("go")
    finally:
        yield bump(f"{counter}:finally")


@durable.workflow(name="tests.routed_or_signal")
def routed_or_signal():
    """Its step goes to another queue, so advancing here leaves it queued; a signal can win instead."""
    from .workflows import routed

    return (yield durable.any_of(routed(), durable.wait_signal("go")))
