"""Workflows ported from peers' public samples (Temporal's samples-python, DBOS's examples), in this library's style."""

from __future__ import annotations

from datetime import datetime, timedelta

import durable_django as durable

from .models import Counter


def _bump(name: str, by: int = 1) -> int:
    counter, _ = Counter.objects.get_or_create(name=name)
    Counter.objects.filter(pk=counter.pk).update(value=counter.value + by)
    return counter.value + by


@durable.step(name="samples.record")
def record(name: str, by: int = 1) -> int:
    return _bump(name, by)


@durable.step(name="samples.refuse", retry=durable.RetryPolicy(max_attempts=2, initial_interval=timedelta(0)))
def refuse(name: str) -> None:
    _bump(name)
    raise RuntimeError(f"{name} refused")


@durable.workflow(name="samples.updatable_timer")
def updatable_timer(wake_at: str):
    """Temporal's updatable_timer: sleep until a time that a signal may move, earlier or later."""
    wake = datetime.fromisoformat(wake_at)
    moves = 0
    while True:
        index, value = yield durable.any_of(durable.sleep_until(wake), durable.wait_signal("move"))
        if index == 0:
            return {"woke_at": wake.isoformat(), "moves": moves}
        wake, moves = datetime.fromisoformat(value), moves + 1


@durable.workflow(name="samples.transfer")
def transfer(amount: int, fail_deposit: bool):
    """The money-transfer saga: withdraw, deposit; a deposit that fails for good is compensated."""
    yield record("withdrawn", amount)
    try:
        if fail_deposit:
            yield refuse("deposit")
        else:
            yield record("deposited", amount)
    except durable.StepFailed:
        yield record("refunded", amount)
        raise
    return "done"


@durable.workflow(name="samples.subscription")
def subscription(customer: str, periods: int):
    """A subscription billed each period until its last, or until it is cancelled: then a farewell."""
    billed = 0
    try:
        while billed < periods:
            yield record(f"charge-{customer}")
            billed += 1
            yield durable.set_state({"billed": billed})
            yield durable.sleep(timedelta(days=30))
    finally:
        yield record(f"farewell-{customer}")
    return billed


@durable.workflow(name="samples.batcher")
def batcher(batch_size: int, batches_left: int):
    """Signal batching: take up to ``batch_size`` items or what came within an hour, then process them."""
    batch = []
    while len(batch) < batch_size:
        item = yield durable.wait_signal("item", timeout=timedelta(hours=1))
        if item is None:
            break
        batch.append(item)
    if batch:
        yield record("processed", len(batch))
    if batches_left > 1:
        yield durable.continue_as_new(batch_size, batches_left - 1)
    return len(batch)


@durable.workflow(name="samples.leaf")
def leaf(name: str, fail: bool):
    try:
        yield durable.sleep(timedelta(minutes=1))
        if fail:
            yield refuse(name)
        yield record(f"leaf-{name}")
    finally:
        yield record(f"leaf-cleanup-{name}")
    return name


@durable.workflow(name="samples.fan_out")
def fan_out(fail_one: bool):
    """Children in parallel: one failing fails the group at its yield; the others are cancelled."""
    try:
        results = yield durable.all_of(leaf("a", False), leaf("b", fail_one), leaf("c", False))
    except durable.ChildFailed:
        yield record("fan-out-compensated")
        return "compensated"
    return list(results)


@durable.workflow(name="samples.approval")
def approval(deadline_hours: int):
    """Human approval with a deadline and a cancel that still notifies: any_of of two signals and a sleep."""
    try:
        index, value = yield durable.any_of(
            durable.wait_signal("approve"),
            durable.wait_signal("reject"),
            durable.sleep(timedelta(hours=deadline_hours)),
        )
    except durable.Cancelled:
        yield record("approval-withdrawn")
        raise
    outcome = ["approved", "rejected", "expired"][index]
    yield record(f"approval-{outcome}")
    return {"outcome": outcome, "by": value}


GREETINGS = {"en": "Hello, world", "fr": "Bonjour, monde", "es": "Hola mundo"}


@durable.workflow(name="samples.greeting")
def greeting():
    """Temporal's message_passing/introduction: the language is set by update, the greeting released by a signal."""
    language = "en"
    while True:
        which, message = yield durable.any_of(durable.wait_signal("approve"), durable.wait_update("set_language"))
        if which == 0:
            yield durable.set_state({"language": language, "approver": message["name"]})
            return GREETINGS[language]
        previous, language = language, message.payload
        yield durable.set_state({"language": language})
        yield durable.reply(message, previous)


@greeting.validator("set_language")
def supported_language(state, language):
    if language not in GREETINGS:
        raise ValueError(f"{language!r} is not supported")


@greeting.query("language")
def current_language(state, variables):
    return variables["language"] if variables else state["language"]


@greeting.query("languages")
def supported_languages(state, variables):
    return sorted(GREETINGS)
