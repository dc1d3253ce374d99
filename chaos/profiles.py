"""Profiles: how many workflows, how many faults of each kind, and how many must land.

``full`` is the target run (about five minutes on two cores); ``smoke`` is the CI run:
fewer of everything, still every kind of fault landing at least once.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    workflows: int
    #: Seconds over which the starts are spread.
    start_window: float
    #: Faults are injected from ``fault_start`` to ``fault_end`` seconds after the first start.
    fault_start: float
    fault_end: float
    #: Planned faults per kind (the injector's schedule).
    faults: dict[str, int]
    #: Faults that must have landed, per counter of the report; fewer is INCONCLUSIVE.
    minimum: dict[str, int]
    #: Composed workflows (chaos/composed.py) started over the same window, beside the orders.
    composed: int = 0
    workers: int = 2
    concurrency: int = 2
    #: DURABLE_FAULT_PUBLISH for the workers during the fault window.
    publish_faults: str = "drop=0.05,duplicate=0.05"
    #: The fake API's random faults (its magic amounts fault anyway).
    api_faults: dict[str, float] = field(default_factory=lambda: {"p503": 0.03, "pdrop": 0.02, "latency": 0.01})
    #: Every run must be finished this long after the last fault.
    liveness_bound: float = 60.0
    #: How long the harness waits for the runs to finish after the last fault (then reports them lost).
    drain_timeout: float = 120.0


#: What each profile must see at least once, whatever else it asks for.
EVERY_KIND_ONCE = {
    "messages_lost": 1,
    "publishes_dropped": 1,
    "publishes_duplicated": 1,
    "api_applied_then_dropped": 1,
    "api_unavailable": 1,
    "rolled_back_starts": 1,
    "duplicate_starts": 1,
    "early_signals": 1,
    "double_signals": 1,
    "cancels": 1,
}

#: Figures of the composed workload (chaos/composed_checker.py) that the coverage counts: at least one each.
COMPOSED_FIGURES = (
    "loops exited",
    "loops idle",
    "signals_in_start",
    "saga cancelled",
    "saga failed",
    "saga completed",
    "family cancelled",
    "family completed",
    "subscription generations",
    "subscription cancelled",
    "ballot completed",
    "loops published state",
    "saga patch markers",
    "saga deadlines exceeded",
    "counter completed",
    "counter updates replied",
    "counter updates rejected",
    "counter updates retried after a timeout",
    "counter update ids sent again after their reply",
)
COMPOSED_ONCE = {f"composed: {name}": 1 for name in COMPOSED_FIGURES}

FULL = Profile(
    name="full",
    workflows=1000,
    composed=250,
    start_window=150.0,
    fault_start=3.0,
    fault_end=160.0,
    faults={
        "kill_child": 46,
        "kill_main": 12,
        "terminate_backend": 34,
        "pg_restart": 1,
        "broker_restart": 3,
        "broker_restart_lossy": 2,
        "broker_flush": 1,
        "pause_child": 4,
    },
    minimum={
        "pauses_landed": 2,
        "pauses_taken_over": 1,
        "late_writes_refused": 1,
        "worker_kills_landed": 50,
        "kills_mid_step": 20,
        "child_kills_landed": 1,
        "main_kills_landed": 1,
        "terminations_landed": 30,
        "terminations_mid_transaction": 10,
        "pg_restarts": 1,
        "broker_restarts": 5,
        "broker_restarts_lossy": 2,
        **EVERY_KIND_ONCE,
        **COMPOSED_ONCE,
    },
)

SMOKE = Profile(
    name="smoke",
    workflows=200,
    composed=50,
    start_window=35.0,
    fault_start=2.0,
    fault_end=42.0,
    faults={
        "kill_child": 5,
        "kill_main": 2,
        "terminate_backend": 6,
        "pg_restart": 1,
        "broker_restart": 1,
        "broker_restart_lossy": 1,
        "broker_flush": 1,
        "pause_child": 1,
    },
    minimum={
        "pauses_landed": 1,
        "worker_kills_landed": 3,
        "kills_mid_step": 1,
        "child_kills_landed": 1,
        "main_kills_landed": 1,
        "terminations_landed": 4,
        "terminations_mid_transaction": 1,
        "pg_restarts": 1,
        "broker_restarts": 2,
        "broker_restarts_lossy": 1,
        **EVERY_KIND_ONCE,
        **COMPOSED_ONCE,
    },
    publish_faults="drop=0.1,duplicate=0.1",
)

PROFILES = {profile.name: profile for profile in (FULL, SMOKE)}
