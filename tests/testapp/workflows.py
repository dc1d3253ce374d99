"""Workflows the tests run, discovered like a user's ``workflows.py``."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from django.db.models import F

import durable_django as durable

from .models import Counter


@durable.step(name="tests.double")
def double(value: int) -> int:
    return value * 2


@durable.workflow(name="tests.echo")
def echo_workflow(value, **extra):
    doubled = yield double(value)
    return {"value": value, "doubled": doubled, "extra": extra}


@durable.workflow(name="tests.chain")
def chain(steps: int):
    total = 0
    for index in range(steps):
        total = yield double(index) if index % 2 else add_one(total)
    return total


@durable.step(name="tests.add_one")
def add_one(value: int) -> int:
    return value + 1


@durable.step(name="tests.bump", atomic=True)
def bump(name: str) -> int:
    Counter.objects.get_or_create(name=name)
    Counter.objects.filter(name=name).update(value=F("value") + 1)
    return Counter.objects.get(name=name).value


@durable.workflow(name="tests.bumps")
def bumps(steps: int, counter: str):
    """Atomic steps one after another: the value the last one read."""
    value = 0
    for _ in range(steps):
        value = yield bump(counter)
    return value


@durable.step(
    name="tests.flaky",
    retry=durable.RetryPolicy(max_attempts=3, initial_interval=timedelta(milliseconds=10), non_retryable=(KeyError,)),
)
def flaky(fail_times: int, kind: str = "runtime") -> int:
    attempt = durable.step_context().attempt
    if attempt <= fail_times:
        raise KeyError("missing") if kind == "key" else RuntimeError(f"attempt {attempt} failed")
    return attempt


@durable.workflow(name="tests.flaky_workflow")
def flaky_workflow(fail_times: int, kind: str = "runtime"):
    try:
        attempt = yield flaky(fail_times, kind)
    except durable.StepFailed as error:
        return {"gave_up": error.error_type}
    return {"succeeded_on": attempt}


@durable.workflow(name="tests.uncaught")
def uncaught_workflow():
    yield flaky(99)


@durable.step(
    name="tests.slow",
    timeout=timedelta(seconds=0.3),
    retry=durable.RetryPolicy(max_attempts=2, initial_interval=timedelta(0)),
)
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@durable.workflow(name="tests.slow_workflow")
def slow_workflow(seconds: float):
    try:
        return (yield slow(seconds))
    except durable.StepFailed as error:
        return error.error_type


@durable.step(name="tests.bad_result")
def bad_result() -> object:
    return {"when": {1}}


@durable.workflow(name="tests.bad_result_workflow")
def bad_result_workflow():
    yield bad_result()


@durable.step(name="tests.context")
def context_step() -> dict:
    context = durable.step_context()
    return {"key": context.idempotency_key, "attempt": context.attempt, "pid": os.getpid()}


@durable.step(name="tests.routed", queue="special")
def routed() -> str:
    return "routed"


@durable.workflow(name="tests.routed_workflow")
def routed_workflow():
    where = yield routed()
    again = yield double(2)
    return [where, again]


@durable.workflow(name="tests.bump_twice")
def bump_twice(name: str):
    first = yield bump(name)
    second = yield bump(name)
    return [first, second]


@durable.step(name="tests.hold")
def hold(seconds: float) -> str:
    time.sleep(seconds)
    return "held"


@durable.workflow(name="tests.nap")
def nap(seconds: float, counter: str = "nap"):
    yield durable.sleep(timedelta(seconds=seconds))
    return (yield bump(counter))


@durable.workflow(name="tests.collect")
def collect(count: int, name: str = "item"):
    items = []
    while len(items) < count:
        items.append((yield durable.wait_signal(name)))
    return items


@durable.workflow(name="tests.two_names")
def two_names():
    first = yield durable.wait_signal("a")
    second = yield durable.wait_signal("b")
    return [first, second]


@durable.workflow(name="tests.wait_or_timeout")
def wait_or_timeout(hours: float):
    return (yield durable.wait_signal("go", timeout=timedelta(hours=hours)))


@durable.workflow(name="tests.inspectable")
def inspectable(order_id: int):
    stage = "charging"
    charge = yield double(order_id)
    stage = "waiting for shipment"
    yield durable.set_state({"stage": stage, "charge": charge})
    note = yield durable.wait_signal("ship")
    return [charge, note]


@durable.workflow(name="tests.fan_out_fail")
def fan_out_fail():
    try:
        yield durable.all_of(double(1), flaky(99), durable.sleep(timedelta(hours=1)))
    except durable.StepFailed as error:
        return {"failed": error.step}
    return "not reached"


@durable.workflow(name="tests.first_of")
def first_of(hours: float):
    return (yield durable.any_of(durable.wait_signal("go"), durable.sleep(timedelta(hours=hours))))


@durable.workflow(name="tests.parent_of_failing")
def parent_of_failing():
    try:
        yield uncaught_workflow()
    except durable.ChildFailed as error:
        return {"child_failed": error.error_type}
    return "not reached"


@durable.workflow(name="tests.parent")
def parent(value: int):
    doubled = yield echo_workflow(value)
    return doubled["doubled"]


@durable.workflow(name="tests.saga")
def saga(key: str, hold_seconds: float = 0):
    yield bump(f"{key}:charged")
    try:
        yield bump(f"{key}:reserved")
        if hold_seconds:
            yield hold(hold_seconds)
        yield durable.sleep(timedelta(hours=1))
    except (durable.StepFailed, durable.Cancelled):
        yield bump(f"{key}:refunded")
        raise
    return "shipped"


@durable.workflow(name="tests.parent_of_sleeper")
def parent_of_sleeper(key: str):
    return (yield saga(key))


@durable.workflow(name="tests.adder")
def adder(total: int = 0, every: int = 3):
    for _ in range(every):
        total += yield durable.wait_signal("add")
        yield durable.set_state(total)
    yield durable.continue_as_new(total, every)


@durable.workflow(name="tests.versioned")
def versioned():
    bonus = 0
    if os.environ.get("TESTS_CODE_VERSION") == "2" and (yield durable.patched("bonus")):
        bonus = yield double(21)
    note = yield durable.wait_signal("go")
    return {"bonus": bonus, "note": note}


@durable.step(name="tests.crash", timeout=timedelta(seconds=1), retry=durable.RetryPolicy(max_attempts=2))
def crash() -> None:
    os._exit(137)  # like an OOM kill: no exception, no report


@durable.workflow(name="tests.crash_workflow")
def crash_workflow():
    try:
        yield crash()
    except durable.StepFailed as error:
        return {"gave_up": error.error_type}
    return "not reached"


@durable.workflow(name="tests.keys")
def keys():
    first = yield context_step()
    second = yield context_step()
    return [first, second]


@durable.workflow(name="tests.stages")
def stages():
    first = yield double(1)
    yield durable.set_state("between")
    second = yield double(first)
    if (yield durable.patched("extra")):
        second = yield double(second)
    return second


@durable.step(name="tests.until_fixed", retry=durable.RetryPolicy(max_attempts=1))
def until_fixed(name: str) -> str:
    if not Counter.objects.filter(name=f"{name}:fixed").exists():
        raise RuntimeError("not fixed yet")
    return "fixed"


@durable.workflow(name="tests.repairable")
def repairable(name: str):
    before = yield bump(f"{name}:before")
    fixed = yield until_fixed(name)
    after = yield bump(f"{name}:after")
    return [before, fixed, after]


@durable.step(name="tests.pay", timeout=timedelta(seconds=2))
def pay(order: str, amount_cents: int) -> dict:
    from example_project.shop import payments

    key = durable.step_context().idempotency_key
    return payments.charge(amount_cents, idempotency_key=key, reference=order)


@durable.step(name="tests.mark", atomic=True, timeout=timedelta(seconds=2))
def mark(name: str) -> int:
    return bump.func(name)


@durable.workflow(name="tests.purchase")
def purchase(order: str, amount_cents: int):
    charge = yield pay(order, amount_cents)
    marked = yield mark(f"{order}:paid")
    return {"charge": charge["id"], "marked": marked}


@durable.step(name="tests.long_hold", timeout=timedelta(seconds=120))
def long_hold(seconds: float) -> str:
    time.sleep(seconds)
    return "held"


@durable.workflow(name="tests.long_holder")
def long_holder(seconds: float):
    return (yield long_hold(seconds))


@durable.workflow(name="tests.spread")
def spread(width: int):
    values = yield durable.all_of(*(bump(f"spread:{index}") for index in range(width)))
    return len(values)


@durable.step(name="tests.sign_in")
def sign_in(user: str, password: str) -> dict:
    return {"user": user, "token": "tok-sekrit", "keys": [{"api_key": "key-sekrit", "label": "main"}]}


@durable.workflow(name="tests.secretive")
def secretive(user: str, password: str):
    """Carries secrets in every place the admin shows: input, result, state, signal, locals."""
    session = yield sign_in(user, password=password)
    yield durable.set_state({"stage": "approval", "card": "4111111111111111"})
    approval = yield durable.wait_signal("approve")
    return {"session": session, "approval": approval}


@durable.workflow(name="tests.tour")
def tour(value: int):
    """Yields one of every kind of request, so a page that shows history can show them all."""
    doubled = yield double(value)
    if (yield durable.patched("tour-v2")):
        doubled = yield add_one(doubled)
    yield durable.set_state({"doubled": doubled})
    both = yield durable.all_of(double(1), echo_workflow(2))
    first = yield durable.any_of(durable.wait_signal("go"), durable.sleep(timedelta(hours=1)))
    late = yield durable.wait_signal("late", timeout=timedelta(minutes=5))
    yield durable.sleep(timedelta(days=30))
    return [doubled, both, first, late]


@durable.step(name="tests.reserve_stock")
def reserve_stock(order_id: int, skus: list) -> dict:
    return {"reservation": f"res-{order_id}", "skus": skus}


@durable.step(name="tests.charge_card", retry=durable.RetryPolicy(max_attempts=3, initial_interval=timedelta(0)))
def charge_card(order_id: int, amount_cents: int, card: dict) -> dict:
    if durable.step_context().attempt == 1:
        raise ConnectionError("payment provider timed out after 10 s")
    return {"charge_id": f"ch_{order_id}", "amount_cents": amount_cents, "card_last4": card["number"][-4:]}


@durable.step(name="tests.send_email")
def send_email(to: str, template: str) -> str:
    return f"msg-{template}-{to.split('@')[0]}"


@durable.workflow(name="tests.notify_warehouse")
def notify_warehouse(order_id: int, skus: list):
    return (yield add_one(order_id))


@durable.workflow(name="tests.fulfil_order")
def fulfil_order(order_id: int, amount_cents: int, email: str, card: dict):
    """A realistic run for the admin's screenshots: retries, state, a group with a child, a signal."""
    skus = ["BOOK-1984", "MUG-BLUE"]
    reservation = yield reserve_stock(order_id, skus)
    charge = yield charge_card(order_id, amount_cents, card=card)
    yield durable.set_state({"stage": "paid", "charge": charge["charge_id"]})
    receipt, picked = yield durable.all_of(send_email(email, "receipt"), notify_warehouse(order_id, skus))
    yield durable.set_state({"stage": "awaiting shipment", "charge": charge["charge_id"]})
    shipment = yield durable.wait_signal("shipped", timeout=timedelta(days=7))
    return {"reservation": reservation["reservation"], "receipt": receipt, "shipment": shipment, "picked": picked}


@durable.workflow(name="tests.refuses")
def refuses(reason: str):
    yield double(1)
    raise ValueError(reason)


@durable.workflow(name="tests.cart")
def cart(customer: str):
    items = []
    while True:
        item = yield durable.wait_signal("add")
        if item == "checkout":
            break
        items.append(item)
        yield durable.set_state({"items": len(items)})
    return {"customer": customer, "items": items}


@cart.query("total")
def cart_total(state, variables, discount_percent=0):
    cents = sum(item["cents"] for item in variables.get("items", []))
    return cents * (100 - discount_percent) // 100


@cart.query("count")
def cart_count(state, variables):
    return 0 if state is None else state["items"]


@cart.query("variables")
def cart_variables(state, variables):
    return dict(variables)


@cart.query("meddle")
def meddle(state, variables):
    state["items"] = 999
    variables["items"].clear()
    return "meddled"


@cart.query("broken")
def broken(state, variables):
    return state["items"] / 0


from . import compositions, conversations  # noqa: E402, F401  (registers their workflows)


@durable.workflow(name="tests.drowsy")
def drowsy(seconds: float, counter: str = "drowsy", waking: float = 0.05):
    yield durable.sleep(timedelta(seconds=seconds))
    time.sleep(waking)  # slow to wake: a batch of these takes long enough to be killed in the middle
    return (yield bump(counter))
