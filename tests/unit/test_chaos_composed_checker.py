"""The chaos harness's composed checker: each invariant passes a healthy run and catches its violation.

A checker that never fails proves nothing: each test builds the rows a run would leave
(runs, history entries, inbox signals, receipts, the ledger's applications, the cleanup
log, child runs) as plain objects, once as the docs say they must be and once broken.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as Row
from typing import Any

from chaos.composed import LOOSE_DEADLINE, ComposedPlan, make_composed_plans
from chaos.composed_checker import DESCRIPTIONS, check_composed

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(ref: str, status: str = "completed", result: Any = None, **fields: Any) -> Row:
    values = {
        "pk": uuid.uuid4(),
        "workflow_id": ref,
        "status": status,
        "result": result,
        "generation": 0,
        "cancel_requested": False,
        "cancel_requested_at": None,
        "finished_at": at(10),
        "parent_id": None,
        "input_json": "{}",
        "state": None,
        "error": None,
        "created_at": at(0),
        "deadline_at": None,
        "deadline_exceeded": False,
    }
    values.update(fields)
    return Row(**values)


def entry(owner: Row, seq: int, kind: str, name: str = "", status: str = "completed", **fields: Any) -> Row:
    values = {"run_id": owner.pk, "seq": seq, "kind": kind, "name": name, "status": status, "result_json": None}
    values.update({"error_json": None, "args_json": "{}", "finished_at": None})
    values.update({"fire_at": None, "child_id": None, "attempts": 1})
    values.update(fields)
    return Row(**values)


class World:
    """The rows of one check: add runs and their traces, then ``check()``."""

    def __init__(self) -> None:
        self.plans: list[ComposedPlan] = []
        self.runs: dict[str, Row] = {}
        self.history: dict[Any, list[Row]] = {}
        self.signals: list[Row] = []
        self.receipts: dict[str, Row] = {}
        self.applications: list[dict[str, Any]] = []
        self.cleanups: list[Row] = []
        self.children: list[Row] = []
        self.updates: list[Row] = []

    def plan(self, kind: str, owner: Row, args: list[Any], **fields: Any) -> ComposedPlan:
        plan = ComposedPlan(len(self.plans), owner.workflow_id, kind, args, 0.0, [], outcome="committed", **fields)
        self.plans.append(plan)
        self.runs[owner.workflow_id] = owner
        self.history.setdefault(owner.pk, [])
        return plan

    def signal(self, plan: ComposedPlan, name: str, consumed_seq: int | None, committed: float = 1.0) -> str:
        nonce = uuid.uuid4().hex
        owner = self.runs[plan.ref]
        plan.signals.append(
            {"nonce": nonce, "name": name, "early": False, "order": len(plan.signals) + 1, "outcome": "committed"}
        )
        self.receipts[nonce] = Row(nonce=nonce, ref=plan.ref, action=name, committed_at=at(committed))
        payload = json.dumps({"nonce": nonce})
        self.signals.append(
            Row(pk=len(self.signals) + 1, run_id=owner.pk, name=name, payload_json=payload, consumed_seq=consumed_seq)
        )
        return nonce

    def check(self) -> dict[str, list[Any]]:
        found, _ = check_composed(
            self.plans,
            self.runs,
            self.history,
            self.signals,
            self.receipts,
            self.applications,
            self.cleanups,
            self.children,
            self.updates,
            waits_for=lambda live, history: [f"{live.status}: waits"],
        )
        return {name: offenders for name, offenders in found.items() if offenders}


def loop_world() -> tuple[World, list[str]]:
    world = World()
    owner = run("loop-1")
    plan = world.plan("loop", owner, [30.0, "timer"])
    first = world.signal(plan, "submit", 0)
    second = world.signal(plan, "submit", 4)
    ending = world.signal(plan, "exit", 8)
    owner.result = {"status": "exited", "received": [first, second], "exit": ending}
    # After each submit it took, the loop published how many it had: set_state entries, the last one in run.state.
    world.history[owner.pk] = [
        entry(owner, 2, "state", args_json='{"received": 1}'),
        entry(owner, 6, "state", args_json='{"received": 2}'),
    ]
    owner.state = {"received": 2}
    return world, [first, second, ending]


def test_a_healthy_loop_passes():
    world, _ = loop_world()
    assert world.check() == {}


def test_a_signal_returned_twice_or_lost_is_caught():
    world, (first, second, _) = loop_world()
    world.runs["loop-1"].result["received"] = [first, first, second]
    assert "returned 2 times" in str(world.check()["composed_signals"])

    world, _ = loop_world()
    world.signals.pop()  # the exit's inbox row is gone
    assert "committed signal lost" in str(world.check()["composed_signals"])


def test_a_submit_sent_before_the_exit_and_left_unread_is_caught():
    world, (first, _, _) = loop_world()
    world.signals[1].consumed_seq = None
    world.runs["loop-1"].result["received"] = [first]
    assert "sent before the exit was left unread" in str(world.check()["composed_signals"])


def test_a_loop_that_idled_out_with_an_older_signal_unread_is_caught():
    world = World()
    owner = run("loop-2", result=None)
    plan = world.plan("loop", owner, [2.0, "timer"])
    world.history[owner.pk] = [
        entry(owner, 0, "any_of"),
        entry(owner, 1, "signal", "submit", "cancelled"),
        entry(owner, 2, "signal", "exit", "cancelled"),
        entry(owner, 3, "sleep", fire_at=at(5)),
    ]
    world.signal(plan, "submit", None, committed=6.0)  # after the timer came due: may stay unread
    owner.result = {"status": "idle", "received": []}
    assert world.check() == {}
    world.signal(plan, "submit", None, committed=4.0)  # before it: the wait had to take it
    assert "idled out while a signal committed before" in str(world.check()["composed_signals"])


def saga_world(status: str, *, charged: bool, refunded: bool, cancels: list[str]) -> World:
    world = World()
    owner = run("saga-1", status, result={"status": "completed", "charge": "ch_1"} if status == "completed" else None)
    world.plan("saga", owner, ["saga-1", 10_000_001, 1050, 0.5, ""], order_id=10_000_001, cancels=cancels)
    if charged:
        world.applications.append({"kind": "charge", "order_id": 10_000_001, "effect_id": "ch_1", "target": ""})
    if refunded:
        world.applications.append({"kind": "refund", "order_id": 10_000_001, "effect_id": "re_1", "target": "ch_1"})
    world.history[owner.pk] = [entry(owner, 0, "step", "chaos.shop.composed.cleanup")]
    world.cleanups.append(Row(ref="saga-1", key=f"{owner.pk.hex}-0"))
    return world


def test_a_saga_is_refunded_iff_it_was_charged_and_did_not_complete():
    assert saga_world("completed", charged=True, refunded=False, cancels=[]).check() == {}
    assert saga_world("cancelled", charged=True, refunded=True, cancels=["committed"]).check() == {}
    assert saga_world("cancelled", charged=False, refunded=False, cancels=["committed"]).check() == {}
    broken = saga_world("cancelled", charged=True, refunded=False, cancels=["committed"]).check()
    assert list(broken) == ["saga_ledger"]
    broken = saga_world("completed", charged=True, refunded=True, cancels=[]).check()
    assert list(broken) == ["saga_ledger"]


def test_a_cancelled_sagas_cleanup_must_have_run_exactly_once():
    world = saga_world("cancelled", charged=False, refunded=False, cancels=["committed"])
    world.history[world.runs["saga-1"].pk][
        0
    ].status = "cancelled"  # the cancel landed on the cleanup, which was never asked again
    assert "cleanup entries" in str(world.check()["saga_cleanup"])
    world = saga_world("cancelled", charged=False, refunded=False, cancels=["committed"])
    world.cleanups.append(Row(ref="saga-1", key=world.cleanups[0].key))  # its body committed twice
    assert "committed 2 times" in str(world.check()["saga_cleanup"])


def test_a_committed_cancel_must_end_the_saga_cancelled():
    broken = saga_world("completed", charged=True, refunded=False, cancels=["committed"]).check()
    assert list(broken) == ["composed_outcomes"]


def family_world(child_status: str, child_finished: float) -> World:
    world = World()
    owner = run("family-1", result={"mode": "all", "results": [0]})
    world.plan("family", owner, ["family-1", "all", [0.5]])
    child = run("family-1/1", child_status, parent_id=owner.pk, finished_at=at(child_finished))
    child.input_json = '{"args": ["family-1", 0, 0.5]}'
    world.children.append(child)
    return world


def test_no_child_is_left_live_or_outlives_its_parent_uncancelled():
    assert family_world("completed", 9).check() == {}
    assert family_world("completed", 11).check() == {}  # its last transaction began after the parent's
    assert "live child" in str(family_world("running", 9).check()["children_orphaned"])
    assert "never cancelled" in str(family_world("completed", 30).check()["children_orphaned"])
    world = family_world("completed", 9)
    world.children[0].cancel_requested_at = at(8)
    assert "cancelled, yet completed" in str(world.check()["children_orphaned"])


def test_each_subscription_generation_starts_its_own_child():
    world = World()
    owner = run("subscription-1", result={"status": "done", "billed": [0, 1]}, generation=1)
    world.plan("subscription", owner, ["subscription-1", 2, 0.5, []])
    for cycle in (0, 1):
        child = run(f"subscription-1/{cycle}", parent_id=owner.pk, finished_at=at(5 + cycle))
        child.input_json = json.dumps({"args": ["subscription-1", cycle]})
        world.children.append(child)
    assert world.check() == {}
    world.children[1].input_json = '{"args": ["subscription-1", 0]}'  # generation 1 reused generation 0's child
    assert "each generation must start its own" in str(world.check()["children_orphaned"])


def test_a_run_left_live_is_named_with_what_it_waits_for():
    world = World()
    world.plan("loop", run("loop-3", "waiting"), [30.0, "timer"])
    assert world.check() == {"stuck_runs": [{"ref": "loop-3", "status": "waiting", "waits_for": ["waiting: waits"]}]}


def test_plans_follow_from_the_seed_and_cover_every_kind():
    plans = make_composed_plans(200, seed=5, start_window=100.0)
    again = make_composed_plans(200, seed=5, start_window=100.0)
    assert [(p.ref, p.args, p.events) for p in plans] == [(p.ref, p.args, p.events) for p in again]
    assert {plan.kind for plan in plans} == {"loop", "saga", "family", "subscription", "ballot", "counter"}
    assert any(event.action == "cancel" for plan in plans for event in plan.events)
    assert any(event.action == "update" for plan in plans for event in plan.events)
    assert {plan.timeout for plan in plans if plan.timeout} >= {LOOSE_DEADLINE}
    assert len({plan.order_id for plan in plans if plan.order_id}) == sum(1 for plan in plans if plan.kind == "saga")
    assert set(DESCRIPTIONS) >= {"composed_signals", "saga_ledger", "saga_cleanup", "children_orphaned", "stuck_runs"}
    assert set(DESCRIPTIONS) >= {"loop_state", "saga_patch", "deadlines", "counter_updates"}


def test_a_ballot_whose_wait_timed_out_with_an_older_vote_unread_is_caught():
    world = World()
    owner = run("ballot-1")
    plan = world.plan("ballot", owner, [2, 30.0])
    world.history[owner.pk] = [
        entry(owner, 0, "all_of"),
        entry(owner, 1, "signal", "vote", result_json=None, fire_at=at(31)),
        entry(owner, 2, "signal", "vote", result_json=None, fire_at=at(31)),
    ]
    first = world.signal(plan, "vote", 1)
    world.history[owner.pk][1].result_json = json.dumps({"nonce": first})
    owner.result = {"status": "counted", "received": [first]}
    assert world.check() == {}  # one voter never voted: its wait timed out
    world.signal(plan, "vote", None, committed=2.0)  # yet a second vote was there all along
    assert "waits timed out while this vote" in str(world.check()["composed_signals"])


def test_every_seed_plans_what_the_smoke_coverage_needs():
    # By chance, about one smoke run in 30 planned no saga that fails for good (coverage INCONCLUSIVE).
    from chaos.profiles import SMOKE

    for seed in range(300):
        plans = make_composed_plans(SMOKE.composed, seed, SMOKE.start_window)
        sagas = [plan for plan in plans if plan.kind == "saga" and not plan.events]
        loops = [plan for plan in plans if plan.kind == "loop"]
        assert {saga.args[4] for saga in sagas} == {"", "fail", "flaky"}, seed
        assert any(loop.in_start for loop in loops) and any(loop.args[0] != 30.0 for loop in loops), seed
        # set_state: loops that take submits; patched: sagas that fail (they compensate); deadlines: sagas that
        # wait for an approval no one sends, under a deadline shorter than the smoke run.
        assert any(event.name == "submit" for loop in loops for event in loop.events), seed
        approvals = [saga for saga in sagas if saga.args[6]]
        assert approvals and all(saga.timeout and saga.timeout < 10 for saga in approvals), seed
        assert all(saga.args[2] % 100 != 1 for saga in approvals), seed  # a declined card fails before the deadline
        # Updates: every counter has a call that times out, an id sent again after its reply, and a bad amount.
        counters = [plan for plan in plans if plan.kind == "counter"]
        assert counters, seed
        for plan in counters:
            updates = [event for event in plan.events if event.action == "update"]
            assert any(event.timeout == 0 for event in updates), seed
            assert any(event.resend for event in updates), seed
            assert any(event.amount <= 0 for event in updates), seed
            assert any(event.amount > 0 and not event.late for event in updates), seed


def test_a_loops_published_state_must_be_what_it_took():
    world, _ = loop_world()
    world.runs["loop-1"].state = {"received": 1}  # behind what its result took
    assert "run.state" in str(world.check()["loop_state"])
    world, _ = loop_world()
    world.runs["loop-1"].state = {"received": 3}  # ahead of it
    assert "run.state" in str(world.check()["loop_state"])
    world, _ = loop_world()
    owner = world.runs["loop-1"]
    world.history[owner.pk].insert(1, entry(owner, 3, "state", args_json='{"received": 1}'))  # published twice
    assert "published" in str(world.check()["loop_state"])


def compensated_saga(markers: list[tuple[int, str]]) -> World:
    """A saga cancelled after its charge: patch markers at the given positions, the refund at 3, the cleanup at 4."""
    world = saga_world("cancelled", charged=True, refunded=True, cancels=["committed"])
    owner = world.runs["saga-1"]
    world.history[owner.pk] = [
        entry(owner, 0, "step", "chaos.shop.workflows.charge_card"),
        *(entry(owner, seq, "patched", name, result_json="true") for seq, name in markers),
        entry(owner, 3, "step", "chaos.shop.composed.refund_order"),
        entry(owner, 4, "step", "chaos.shop.composed.cleanup"),
    ]
    world.cleanups[0].key = f"{owner.pk.hex}-4"
    return world


def test_a_saga_that_compensated_recorded_its_patch_marker_once_before_the_refund():
    assert compensated_saga([(2, "refund-by-reference")]).check() == {}
    assert "markers" in str(compensated_saga([]).check()["saga_patch"])  # the marker lost
    twice = compensated_saga([(1, "refund-by-reference"), (2, "refund-by-reference")]).check()
    assert "markers" in str(twice["saga_patch"])
    assert "after the refund" in str(compensated_saga([(5, "refund-by-reference")]).check()["saga_patch"])
    world = compensated_saga([(2, "refund-by-reference")])  # a marker, and no refund after it
    world.history[world.runs["saga-1"].pk].pop(2)
    assert "no refund after" in str(world.check()["saga_patch"])


def deadline_saga(**fields: Any) -> World:
    """A saga that waited for an approval no one sent, cancelled at its 2 s deadline, then compensated."""
    world = World()
    values = {
        "status": "cancelled",
        "error": {"type": "durable_django.exceptions.DeadlineExceeded", "message": "the run's deadline passed"},
        "deadline_at": at(2),
        "deadline_exceeded": True,
        "cancel_requested_at": at(2.4),
        "cancel_requested": True,
    }
    owner = run("saga-2", **{**values, **fields})
    world.plan("saga", owner, ["saga-2", 10_000_002, 1050, 0.5, "", 1.0, True], order_id=10_000_002, timeout=2.0)
    world.applications.append({"kind": "charge", "order_id": 10_000_002, "effect_id": "ch_2", "target": ""})
    world.applications.append({"kind": "refund", "order_id": 10_000_002, "effect_id": "re_2", "target": "ch_2"})
    world.history[owner.pk] = [
        entry(owner, 0, "step", "chaos.shop.workflows.charge_card"),
        entry(owner, 1, "signal", "approve", "cancelled", finished_at=at(2.5)),
        entry(owner, 2, "patched", "refund-by-reference", result_json="true"),
        entry(owner, 3, "step", "chaos.shop.composed.refund_order"),
        entry(owner, 4, "step", "chaos.shop.composed.cleanup"),
    ]
    world.cleanups.append(Row(ref="saga-2", key=f"{owner.pk.hex}-4"))
    return world


def test_a_deadline_is_the_start_plus_the_timeout_never_early_and_ends_the_run_by_it():
    assert deadline_saga().check() == {}
    early = deadline_saga(cancel_requested_at=at(1.5)).check()  # the deadline fired before its time
    assert "fired early" in str(early["deadlines"])
    world = deadline_saga()
    world.history[world.runs["saga-2"].pk][1].finished_at = at(1.0)  # the wait cancelled before the deadline
    assert "cancelled before the deadline" in str(world.check()["deadlines"])
    assert "the start + 30.00 s" in str(deadline_saga(deadline_at=at(30)).check()["deadlines"])
    assert "the start + 2.50 s" in str(deadline_saga(deadline_at=at(2.5)).check()["deadlines"])  # later than asked
    assert deadline_saga(deadline_at=at(1.9)).check() == {}  # the clock read a moment before the run's insert
    # Its deadline fired, yet the run completed: the approval it waited for never came, nothing else ends it.
    completed = deadline_saga(status="completed", error=None, result={"status": "completed", "charge": "ch_2"})
    assert "its deadline fired, yet it ended completed" in str(completed.check()["deadlines"])
    unfired = deadline_saga(status="completed", error=None, deadline_exceeded=False, cancel_requested_at=None)
    assert "approval no one sends" in str(unfired.check()["deadlines"])
    world = deadline_saga()
    world.plans[0].timeout = None  # a run given no timeout has no deadline
    assert "a deadline no one gave it" in str(world.check()["deadlines"])


def counter_world() -> World:
    """A counter that applied 10 then 20 and rejected -5; one call timed out first, one id was sent again."""
    world = World()
    owner = run("counter-1", result={"status": "idle", "total": 30, "applied": ["c-u0", "c-u1"]})
    plan = world.plan("counter", owner, ["counter-1", 3.0])
    rows = [
        ("c-u0", 10, 0, {"total": 10, "n": 1}, None),
        ("c-u1", 20, 2, {"total": 30, "n": 2}, None),
        ("c-u2", -5, 4, None, "amount must be a positive int, not -5"),
    ]
    for update_id, amount, seq, reply, rejection in rows:
        world.updates.append(
            Row(
                run_id=owner.pk,
                update_id=update_id,
                payload_json=json.dumps({"amount": amount}),
                consumed_seq=seq,
                reply_json=None if reply is None else json.dumps(reply),
                rejection=rejection,
                created_at=at(seq),
            )
        )
    world.history[owner.pk] = [entry(owner, 6, "update", "add", result_json=None, finished_at=at(9))]  # idled out

    def call(outcome: str, reply: Any = None, resend: bool = False) -> dict[str, Any]:
        return {"outcome": outcome, "reply": reply, "resend": resend}

    plan.updates = [
        {"update_id": "c-u0", "calls": [call("timeout"), call("replied", {"total": 10, "n": 1})]},
        {
            "update_id": "c-u1",
            "calls": [call("replied", {"total": 30, "n": 2}), call("replied", {"total": 30, "n": 2}, resend=True)],
        },
        {"update_id": "c-u2", "calls": [call("rejected")]},
    ]
    return world


def test_a_counter_applies_each_update_once_in_order_and_its_callers_hear_what_it_did():
    world = counter_world()
    found, figures = check_composed(world.plans, world.runs, world.history, [], {}, [], [], [], world.updates)
    assert not any(found.values())
    assert figures["counter updates retried after a timeout"] == 1
    assert figures["counter update ids sent again after their reply"] == 1
    assert figures["counter updates rejected"] == 1

    world = counter_world()  # an update applied twice: the result names it twice, its amount counted twice
    world.runs["counter-1"].result = {"status": "idle", "total": 50, "applied": ["c-u0", "c-u1", "c-u1"]}
    assert "the database replied to" in str(world.check()["counter_updates"])
    world = counter_world()  # a reply out of step with the amounts applied before it
    world.updates[1].reply_json = json.dumps({"total": 20, "n": 2})
    assert "the total was 30" in str(world.check()["counter_updates"])
    world = counter_world()  # the bad amount applied instead of rejected
    world.updates[2].rejection, world.updates[2].reply_json = None, json.dumps({"total": 25, "n": 3})
    assert "amount -5 applied" in str(world.check()["counter_updates"])
    world = counter_world()  # a caller heard another reply than the one the run gave
    world.plans[0].updates[0]["calls"][1]["reply"] = {"total": 99, "n": 1}
    assert "the caller got" in str(world.check()["counter_updates"])
    world = counter_world()  # taken and never answered
    world.updates[1].reply_json = None
    assert "never answered" in str(world.check()["counter_updates"])
    world = counter_world()  # a caller told RunFinished for an update the run took
    world.plans[0].updates[2]["calls"] = [{"outcome": "refused_finished", "resend": False}]
    assert "heard RunFinished" in str(world.check()["counter_updates"])
    world = counter_world()  # left unread by a counter that did not idle out
    world.updates[2].consumed_seq, world.updates[2].rejection = None, None
    world.runs["counter-1"].result["status"] = "full"
    assert "unread, yet the counter ended full" in str(world.check()["counter_updates"])
    world = counter_world()  # sent after the wait timed out: it may stay unread
    world.updates[2].consumed_seq, world.updates[2].rejection, world.updates[2].created_at = None, None, at(9.5)
    world.plans[0].updates[2]["calls"] = [{"outcome": "refused_finished", "resend": False}]
    assert world.check() == {}
    world.updates[2].created_at = at(8)  # sent before it: the timer had to leave the wait to take it
    assert "unread: the wait timed out" in str(world.check()["counter_updates"])
