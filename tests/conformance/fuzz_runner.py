"""The fuzz loop: programs side by side, events applied only to idle programs, kills in between."""

from __future__ import annotations

import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from durable_django.models import WorkflowRun, WorkItem

from . import realtime
from .cluster import Killer
from .compare import differences, report
from .generate import RandomChooser
from .inline import check, deliver, empty_tables, sent_updates, start
from .known_bugs import known
from .lost import Stamped, lost_attempts
from .model import Event, predict
from .model_runs import Lost
from .observe import observe
from .program import Program
from .schedule import case
from .shrink import shrink


@dataclass
class Case:
    index: int
    program: Program
    events: list[Event]
    root: str  # the root run's scope, "P<index>"
    prefix: str  # its workflow id, which starts the id of every run of the program
    run: WorkflowRun | None = None
    applied: int = 0
    epoch: int = 0  # events applied and clock steps taken: what a journal record was written after
    clock: realtime.Clock | None = None
    replies: list[str] = field(default_factory=list)
    records: list[Stamped] = field(default_factory=list)
    busy_since: float = 0.0


@dataclass
class Failure:
    case: Case
    problems: list[str]
    lost: Lost


class JournalTail:
    """The journal file, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


class Runner:
    def __init__(self, seed: int, indexes: list[int], journal: Path, killer: Killer, batch: int, timeout: float):
        self.seed = seed
        self.pending = deque(indexes)
        self.tail = JournalTail(journal)
        self.killer = killer
        self.batch = batch
        self.timeout = timeout
        self.active: dict[str, Case] = {}
        self.failures: list[Failure] = []
        self.counts = {"run": 0, "known": 0, "ambiguous": 0, "events": 0, "lost": 0, "stuck": 0}

    def make(self, index: int) -> Case:
        root = f"P{index}"
        program, events = case(RandomChooser(random.Random(f"{self.seed}:{index}")), root)
        return Case(index, program, events, root, f"fz{self.seed}-{index:06d}:")

    def run(self) -> None:
        while self.pending or self.active:
            while self.pending and len(self.active) < self.batch:
                self.start(self.make(self.pending.popleft()))
            self.route()
            under_way = False
            for item in list(self.active.values()):
                under_way = self.step(item) or under_way
            self.killer.tick(under_way)
            time.sleep(0.02)

    def start(self, item: Case) -> None:
        expected = predict(item.program, item.events, item.root)
        if expected.ambiguous or known(expected.shapes):
            self.counts["ambiguous" if expected.ambiguous else "known"] += 1
            return
        item.run = start(item.program, item.root, item.prefix)
        item.busy_since = time.monotonic()
        self.active[item.root] = item

    def route(self) -> None:
        """Give each program the journal records written so far, stamped with its epoch."""
        for record in self.tail.read():
            name = record.get("scope") or record.get("tag") or ""
            owner = self.active.get(name.split(".", 1)[0])
            if owner is not None:
                owner.records.append((owner.epoch, record))

    def step(self, item: Case) -> bool:
        """Move one program on if it is idle; True while it has work under way."""
        if realtime.busy(item.prefix):
            if time.monotonic() - item.busy_since > self.timeout:
                self.stuck(item)
            return True
        self.route()  # everything written so far was written before what happens next
        item.busy_since = time.monotonic()
        if item.clock is not None:
            item.epoch += 1
            if item.clock.step(item.prefix):
                return True
            item.clock = None
        if item.applied < len(item.events):
            event = item.events[item.applied]
            item.applied += 1
            item.epoch += 1
            self.counts["events"] += 1
            assert item.run is not None
            if event["ev"] in ("signal", "update", "cancel"):
                item.replies.append(deliver(event, item.run, item.root))
            else:  # a worker's generator cache is lost only to kills here: "cache" is a no-op
                item.replies.append("ok")
                if event["ev"] == "time":
                    item.clock = realtime.Clock(event["seconds"])
            return True
        self.finish(item)
        return False

    def finish(self, item: Case) -> None:
        del self.active[item.root]
        self.counts["run"] += 1
        # Without kills nothing may be lost: the model gets no excuse, and any such attempt is a disagreement.
        lost = lost_attempts(item.records, item.program) if self.killer.kills else {}
        self.counts["lost"] += len(lost)
        expected = predict(item.program, item.events, item.root, lost)
        if expected.ambiguous or known(expected.shapes):
            self.counts["ambiguous" if expected.ambiguous else "known"] += 1
            return
        assert item.run is not None
        item.run.refresh_from_db()
        records = [record for _, record in item.records]
        sent = sent_updates(item.events, item.root)
        actual = observe(item.run, item.replies, records, kills=self.killer.kills, sent=sent)
        problems = differences(expected, actual)
        if problems:
            self.failures.append(Failure(item, problems, lost))
            print(f"DISAGREEMENT in program {item.index}:\n{_text(item, problems, lost)}", flush=True)
        if self.counts["run"] % 100 == 0:
            print(f"  {self.counts['run']} programs checked, {len(self.failures)} disagreements", flush=True)

    def stuck(self, item: Case) -> None:
        del self.active[item.root]
        self.counts["stuck"] += 1
        runs = WorkflowRun.objects.filter(workflow_id__startswith=item.prefix)
        items = WorkItem.objects.filter(run__workflow_id__startswith=item.prefix).values_list(
            "kind", "seq", "available_at", "lease_expires_at", "owner"
        )
        problem = (
            f"did not become idle within {self.timeout:g} s after event {item.applied}: runs "
            f"{[(run.workflow_id, run.status) for run in runs]}, work items {list(items)}"
        )
        self.failures.append(Failure(item, [problem], {}))
        print(f"STUCK program {item.index}:\n{_text(item, [problem], {})}", flush=True)

    def summary(self, seconds: float, workdir: Path) -> str:
        counts = self.counts
        return "\n".join(
            [
                f"make fuzz summary (seed {self.seed}):",
                f"  programs: {counts['run']} run against the worker, {counts['known']} skipped as known bugs, "
                f"{counts['ambiguous']} skipped as too close to call",
                f"  events applied: {counts['events']}",
                f"  kills: {self.killer.killed} ({self.killer.pool_kills} pool processes, "
                f"{self.killer.worker_kills} whole workers), {self.killer.restarts} graceful restarts; "
                f"attempts lost to them: {counts['lost']}",
                f"  disagreements: {len(self.failures)} ({counts['stuck']} of them stuck)",
                f"  wall time: {seconds:.0f} s; worker logs and journal in {workdir}",
                "  checked for every program run: each run's status, result or error, state, generation and",
                "  unconsumed signals and updates; what every yield returned; which step attempts ran their body;",
                "  which atomic rows committed (once); the reply to each signal, update and cancel (RunFinished,",
                "  the validator's rejection, or taken); what each update's caller gets (reply, rejection, ...).",
            ]
        )


def _text(item: Case, problems: list[str], lost: Lost) -> str:
    shown = [f"{tag} #{number}{'' if ran else ' (before its body ran)'}" for (tag, number), ran in sorted(lost.items())]
    extra = f"attempts lost to kills: {', '.join(shown)}" if lost else ""
    return report(item.program, item.events, problems, extra)


def report_failures(runner: Runner, budget: int, most: int = 5) -> None:
    """Reproduce each disagreement in-process (the worker is stopped by now) and shrink it there."""
    if runner.failures:
        empty_tables()
    for failure in runner.failures[:most]:
        item = failure.case
        problems, expected = check(item.program, item.events)
        if not problems or expected.ambiguous:
            print(f"program {item.index}: does not reproduce in-process (timing or kills); shown as it ran above")
            continue

        def fails(program: Program, events: list[Event]) -> bool:
            found, prediction = check(program, events)
            return bool(found) and prediction.ambiguous is None

        program, events = shrink(item.program, item.events, fails, budget)
        found, _ = check(program, events)
        print(f"program {item.index}, shrunk in-process:\n{report(program, events, found)}", flush=True)
