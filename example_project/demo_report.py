"""The demo's report: every invariant checked from the database and the payment provider's own ledger."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


class DemoFailed(Exception):
    """An invariant is broken, or the runs did not finish in time."""


@dataclass
class Plan:
    """What the web process did with each paid order, by workflow id."""

    shipped: dict[str, str]  # workflow id -> the carrier it was shipped with
    cancelled: list[str]
    unshipped: list[str]


def report(n: int, plan: Plan, kills: Counter[str], elapsed: float) -> None:
    """Print each check; raise DemoFailed if one is broken."""
    from durable_django.models import HistoryEntry, Signal, WorkflowRun, WorkItem
    from example_project.shop import payments
    from example_project.shop.models import Order

    orders = {f"order-{order.pk}": order for order in Order.objects.all()}
    runs = {run.workflow_id: run for run in WorkflowRun.objects.all()}
    ledger, refunds = payments.ledger(), payments.refunds()
    charges = Counter(charge["reference"] for charge in ledger)
    charge_id = {charge["reference"]: charge["charge_id"] for charge in ledger}
    refunds_of = Counter(refund["charge_id"] for refund in refunds)
    refund_id = {refund["charge_id"]: refund["refund_id"] for refund in refunds}
    statuses = Counter(run.status for run in runs.values())
    shipping, cancelled, unshipped = len(plan.shipped), len(plan.cancelled), len(plan.unshipped)

    def agree(ref: str, order: Order) -> bool:  # a cancelled run has no result
        result = runs[ref].result or {"charge": order.charge_id}
        return bool(order.charge_id) and order.charge_id == charge_id.get(ref) == result["charge"]

    def shipped(ref: str, carrier: str) -> bool:
        order, result = orders[ref], runs[ref].result or {}
        return order.status == Order.Status.SHIPPED and order.carrier == carrier == result.get("carrier")

    def refunded_once(ref: str) -> int:  # one refund for the order's charge at the provider, and it is the order's
        order = orders[ref]
        once = refunds_of[order.charge_id] == 1 and order.refund_id == refund_id[order.charge_id]
        return int(order.status == Order.Status.REFUNDED and once)

    refund_writes = sum(order.refund_writes for order in orders.values())
    checks = [
        ("orders", len(orders), n),
        ("cards charged exactly once (provider's ledger)", sum(charges[ref] == 1 for ref in orders), n),
        ("charges in the provider's ledger", len(ledger), n),
        ("mark_paid wrote exactly once (paid_writes == 1)", sum(o.paid_writes == 1 for o in orders.values()), n),
        ("order, run result and ledger agree on the charge", sum(agree(ref, o) for ref, o in orders.items()), n),
        ("orders shipped, with the carrier sent", sum(shipped(ref, c) for ref, c in plan.shipped.items()), shipping),
        ("runs completed (shipped, or refunded at the timeout)", statuses["completed"], shipping + unshipped),
        ("runs cancelled", statuses["cancelled"], cancelled),
        ("cancelled orders refunded, one refund per charge", sum(map(refunded_once, plan.cancelled)), cancelled),
        ("unshipped orders refunded, one refund per charge", sum(map(refunded_once, plan.unshipped)), unshipped),
        ("refunds in the provider's ledger", len(refunds), cancelled + unshipped),
        ("mark_refunded writes (once per refunded order)", refund_writes, cancelled + unshipped),
        ("work items left over", WorkItem.objects.count(), 0),
    ]
    print("\nreport")
    broken = []
    for label, value, expected in checks:
        if value == expected:
            print(f"  ok  {label:55} {value}")
        else:
            print(f"  BAD {label:55} {value} (expected {expected})")
            broken.append(f"{label}: {value}, expected {expected}")

    # Where the signals and cancels landed, from the runs' history.
    cooled = dict(HistoryEntry.objects.filter(kind="sleep").values_list("run__workflow_id", "finished_at"))
    sent = dict(Signal.objects.filter(name="shipped").values_list("run__workflow_id", "created_at"))
    early = sum(cooled[ref] is not None and sent[ref] < cooled[ref] for ref in plan.shipped)
    cancels = HistoryEntry.objects.filter(status="cancelled", run__workflow_id__in=plan.cancelled)
    landed = Counter(cancels.values_list("kind", flat=True))
    retried = sum(charge["requests"] > 1 for charge in ledger)
    kinds = ", ".join(f"{kind}: {count}" for kind, count in kills.items())
    for label, value in [
        ("shipped while cooling off (signal waited in the inbox)", early),
        ("cancelled while cooling off / awaiting shipment", f"{landed['sleep']} / {landed['signal']}"),
        ("charges requested more than once", f"{retried}  (same idempotency key: no double charge)"),
        ("steps that ran more than once", HistoryEntry.objects.filter(attempts__gt=1).count()),
        ("kills that landed mid-step", f"{kills.total()}" + f" ({kinds})" * bool(kinds)),
        ("elapsed", f"{elapsed:.1f} s"),
    ]:
        print(f"      {label:55} {value}")
    if broken:
        raise DemoFailed("; ".join(broken))
