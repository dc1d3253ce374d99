"""The fault schedule: which fault when, drawn from the seed and spread so the faults do not undo each other."""

from __future__ import annotations

import random

from .profiles import Profile

#: How long a zombie stays paused: longer than a step's lease (its 5 s timeout plus the 1 s grace) plus the
#: sweeper's republish delay, so another worker takes the step over while this one sleeps.
PAUSE_SECONDS = 15.0


def make_schedule(profile: Profile, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds after the first start, fault kind), sorted; restarts spread out, the rest at random."""
    start, end = profile.fault_start, profile.fault_end
    span = end - start
    schedule: list[tuple[float, str]] = []
    for kind in ("kill_child", "kill_main", "terminate_backend"):
        schedule += [(rng.uniform(start, end), kind) for _ in range(profile.faults.get(kind, 0))]
    restarts = [start + span * rng.uniform(0.35, 0.55) for _ in range(profile.faults.get("pg_restart", 0))]
    schedule += [(at, "pg_restart") for at in restarts]
    # A paused process wakes before the faults end, and not across a PostgreSQL restart (which would end its
    # session: it could then write nothing at all, and the late write the pause is for would not be tried).
    # One pause per slot, so one wakes before the next begins (one zombie at a time).
    pauses = profile.faults.get("pause_child", 0)
    slot = (max(start + 1.0, end - PAUSE_SECONDS - 1.0) - start) / max(1, pauses)
    for index in range(pauses):
        low = start + slot * index
        high = max(low, low + slot - PAUSE_SECONDS - 1.0)
        for _ in range(100):
            at = rng.uniform(low, high)
            if not any(restart - PAUSE_SECONDS - 3.0 < at < restart + 3.0 for restart in restarts):
                break
        schedule.append((at, "pause_child"))
    broker = ["broker_restart"] * profile.faults.get("broker_restart", 0)
    broker += ["broker_restart_lossy"] * profile.faults.get("broker_restart_lossy", 0)
    broker += ["broker_flush"] * profile.faults.get("broker_flush", 0)
    rng.shuffle(broker)
    # One per slot, so they never pile up; all while orders are still being started, so messages are in flight.
    busy = max(1.0, min(end, profile.start_window - 1.0) - start)
    for index, kind in enumerate(broker):
        slot = busy / len(broker)
        schedule.append((start + slot * index + rng.uniform(0.2, 0.8) * slot, kind))
    return sorted(schedule)
