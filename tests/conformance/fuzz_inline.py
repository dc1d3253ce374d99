"""``make fuzz`` with ``--inline``: the same generated programs, run in-process instead of on a worker.

Ten or more programs a second, so it searches wider than the worker; it also draws
``late`` signals (time passing before any worker looks at them), which only an in-process
run can order for certain. A disagreement is shrunk at once.
"""

from __future__ import annotations

import random

from .compare import differences, report
from .generate import RandomChooser
from .inline import ROOT, check, run_inline
from .known_bugs import known
from .model import Event, predict
from .program import Program
from .schedule import case
from .shrink import shrink


def fuzz_inline(seed: int, indexes: list[int], shrink_budget: int) -> tuple[int, str]:
    """Run the programs; the number of disagreements and a closing summary."""
    counts = {"run": 0, "known": 0, "ambiguous": 0, "events": 0}
    failures = 0
    for index in indexes:
        program, events = case(RandomChooser(random.Random(f"{seed}:{index}")), ROOT, late=True)
        expected = predict(program, events, ROOT)
        if expected.ambiguous or known(expected.shapes):
            counts["ambiguous" if expected.ambiguous else "known"] += 1
            continue
        counts["run"] += 1
        counts["events"] += len(events)
        problems = differences(expected, run_inline(program, events))
        if problems:
            failures += 1
            print(f"DISAGREEMENT in program {index}:\n{report(program, events, problems)}", flush=True)
            program, events = shrink(program, events, _fails, shrink_budget)
            print(f"program {index}, shrunk:\n{report(program, events, check(program, events)[0])}", flush=True)
        if counts["run"] % 500 == 0:
            print(f"  {counts['run']} programs checked, {failures} disagreements", flush=True)
    summary = "\n".join(
        [
            f"make fuzz --inline summary (seed {seed}):",
            f"  programs: {counts['run']} run in-process, {counts['known']} skipped as known bugs, "
            f"{counts['ambiguous']} skipped as too close to call",
            f"  events applied: {counts['events']}",
            f"  disagreements: {failures}",
        ]
    )
    return failures, summary


def _fails(program: Program, events: list[Event]) -> bool:
    found, prediction = check(program, events)
    return bool(found) and prediction.ambiguous is None
