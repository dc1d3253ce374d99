"""Workflows of issue 12's second round: workflow info, the clock and ids, deadlines, updates."""

from __future__ import annotations

from datetime import timedelta

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


@durable.workflow(name="tests.deadline_saga", timeout=timedelta(hours=1))
def deadline_saga(order: int):
    try:
        yield double(order)
        yield durable.wait_signal("shipped")
    except durable.Cancelled as error:
        yield double(-order)  # compensation: runs normally, the deadline is not raised at its yield
        if isinstance(error, durable.DeadlineExceeded):
            raise
        return "cancelled by hand"
    return "shipped"


@durable.workflow(name="tests.deadline_child")
def deadline_child():
    return (yield durable.wait_signal("never"))


@durable.workflow(name="tests.deadline_parent", timeout=timedelta(hours=1))
def deadline_parent(child_minutes: int):
    try:
        return (yield deadline_child.using(timeout=timedelta(minutes=child_minutes))())
    except durable.ChildFailed as error:
        return error.error_type


@durable.workflow(name="tests.deadline_loop", timeout=timedelta(hours=1))
def deadline_loop(n: int):
    yield durable.wait_signal("next")
    yield durable.continue_as_new(n + 1)


@durable.workflow(name="tests.coupon_checkout")
def coupon_checkout(total: int):
    applied: list[str] = []
    while True:
        request = yield durable.wait_update("apply_coupon", timeout=timedelta(hours=1))
        if request is None:  # an hour without a coupon: check out
            return {"total": total, "applied": applied}
        if request.payload in applied:
            yield durable.reject(request, f"{request.payload} is already applied")
            continue
        total -= 10
        applied.append(request.payload)
        yield durable.set_state({"total": total, "applied": applied})
        yield durable.reply(request, total)


@coupon_checkout.validator("apply_coupon")
def coupon_code(state, payload):
    if not isinstance(payload, str) or not payload.isupper():
        raise ValueError(f"coupon codes are upper case, not {payload!r}")
    if state is not None and len(state["applied"]) >= 3:
        raise ValueError("three coupons at most")


@durable.workflow(name="tests.bad_replier")
def bad_replier(how: str):
    request = yield durable.wait_update("ask")
    if how == "not-json":
        yield durable.reply(request, {1, 2})
    elif how == "twice":
        yield durable.reply(request, 1)
        yield durable.reply(request, 2)
    else:  # answers an update it never received
        yield durable.reply(durable.UpdateRequest("made-up", "ask"), 1)


@durable.workflow(name="tests.steps_plain")
def steps_plain(n: int):
    for index in range(n):
        yield double(index)


@durable.workflow(name="tests.steps_clocked")
def steps_clocked(n: int):
    seen = []
    for index in range(n):
        seen.append(durable.now().isoformat())
        durable.uuid4()
        durable.workflow_info()
        yield double(index)
    return seen


@durable.workflow(name="tests.update_or_signal")
def update_or_signal():
    """Serve "add" commands until a "stop" signal, or until an hour passes without either."""
    served: list[object] = []
    while True:
        which, got = yield durable.any_of(
            durable.wait_signal("stop"), durable.wait_update("add"), durable.sleep(timedelta(hours=1))
        )
        if which != 1:
            break
        served.append(got.payload)
        yield durable.reply(got, len(served))
    late = yield durable.wait_update("add", timeout=timedelta(minutes=5))  # one last command, if any waits
    if late is not None:
        yield durable.reply(late, "served after the loop")
    return {"served": served, "ended_by": ["stop", "add", "quiet"][which], "late": late is not None}


@durable.workflow(name="tests.two_updates_together")
def two_updates_together():
    first, second = yield durable.all_of(durable.wait_update("a"), durable.wait_update("b", timeout=timedelta(hours=1)))
    if second is None:
        yield durable.reject(first, "b never came")
        return "alone"
    yield durable.reply(second, f"b with {first.payload}")
    yield durable.reply(first, f"a with {second.payload}")
    return "together"


@durable.workflow(name="tests.forgetful_renewer")
def forgetful_renewer(generation: int):
    request = yield durable.wait_update("renew")
    if generation == 0:
        yield durable.continue_as_new(1)  # starts over without answering the update it took
    yield durable.reply(request, f"renewed by generation {generation}")
    return generation


@durable.workflow(name="tests.update_before_deadline", timeout=timedelta(hours=1))
def update_before_deadline():
    try:
        request = yield durable.wait_update("go")
        yield durable.reply(request, "went")
    except durable.Cancelled:
        yield double(1)  # compensation runs; the update it never took stays unanswered
        raise
    return "done"


@durable.workflow(name="tests.tally")
def tally(total: int):
    """Adds signals, answers "get" updates, continues as new past 10: state, queries, updates span generations."""
    while True:
        which, got = yield durable.any_of(durable.wait_signal("add"), durable.wait_update("get"))
        if which == 1:
            yield durable.reply(got, total)
            continue
        total += got
        yield durable.set_state({"total": total})
        if total > 10:
            yield durable.continue_as_new(total)


@tally.query("total")
def tally_total(state, variables):
    return variables["total"]


@durable.workflow(name="tests.many_updates_together")
def many_updates_together(count: int):
    requests = yield durable.all_of(*[durable.wait_update("vote") for _ in range(count)])
    for request in requests:
        yield durable.reply(request, request.payload * 2)
    return sorted(request.payload for request in requests)


@durable.workflow(name="tests.deadline_renewal", timeout=timedelta(hours=1))
def deadline_renewal(generation: int):
    """Continues as new from its deadline's compensation: that generation and later ones have no deadline."""
    if generation == 0:
        try:
            yield durable.wait_signal("next")
        except durable.DeadlineExceeded:
            yield durable.continue_as_new(1)
    if generation == 1:
        yield durable.wait_signal("next")
        yield durable.continue_as_new(2)
    return (yield deadline_child())


@durable.workflow(name="tests.deadline_or_cancel", timeout=timedelta(hours=1))
def deadline_or_cancel():
    """Compensates one way for its deadline and another for a cancel: a replay must tell them apart."""
    try:
        yield durable.wait_signal("never")
    except durable.DeadlineExceeded:
        yield double(1)
        raise
    except durable.Cancelled:
        yield double(2)
        raise


@durable.workflow(name="tests.refund_child")
def refund_child(order: int):
    return (yield double(order))


@durable.workflow(name="tests.deadline_refunds_by_child", timeout=timedelta(hours=1))
def deadline_refunds_by_child(order: int):
    """Its compensation is a child workflow: it must run, not inherit the deadline that just passed."""
    try:
        yield durable.wait_signal("shipped")
    except durable.DeadlineExceeded:
        refunded = yield refund_child(order)
        yield durable.set_state({"refunded": refunded})
        raise
