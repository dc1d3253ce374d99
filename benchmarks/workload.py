"""What a scenario sends and how the driver sees it finish: durable workflows or Celery chains.

Each driver starts its workflows through the public API (``workflow.start()``, or a
``celery.chain``), watches for completion with counted progress queries, and reads the
start and end of every workflow back from the database afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from durable_django.models import WorkflowRun

from .benchapp import tasks, workflows
from .benchapp.models import Row
from .pgstats import Poller

__all__ = ["ChainDriver", "Driver", "DurableDriver", "PlainChainDriver", "Scenario", "driver_for", "wait_for"]

RUNS = WorkflowRun._meta.db_table
ROWS = Row._meta.db_table


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to run: durable workflows (by name) or plain Celery chains, and how many."""

    key: str
    title: str
    kind: str  # "durable", "chain" (one insert a task), "plain-chain" (no database) or "dbos"
    workflows: int
    steps: int
    workflow: str = ""
    worker_env: dict[str, str] = field(default_factory=dict)
    #: Workflows run one at a time after the burst, for the latency of one workflow on an idle worker.
    solo: int = 0


def wait_for(check: Callable[[], bool], *, timeout: float, interval: float, what: str) -> None:
    """Poll ``check`` every ``interval`` seconds; give up with an error after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class DurableDriver:
    """Starts durable workflows through the public API and watches their runs."""

    def __init__(self, scenario: Scenario, poller: Poller) -> None:
        self.scenario = scenario
        self.poller = poller
        self.definition = {"bench.trivial": workflows.trivial, "bench.atomic": workflows.atomic}[scenario.workflow]

    def start(self, workflow_id: str, index: int) -> None:
        if self.scenario.workflow == "bench.atomic":
            self.definition.start(index, self.scenario.steps, workflow_id=workflow_id)
        else:
            self.definition.start(self.scenario.steps, workflow_id=workflow_id)

    def burst(self) -> None:
        for index in range(self.scenario.workflows):
            self.start(f"burst-{index}", index)

    def finished(self, pattern: str, expected: int) -> bool:
        """Whether ``expected`` runs whose workflow_id is LIKE ``pattern`` completed; fails fast on a failed run."""
        done, broken = self.poller.row(
            f"SELECT count(*) FILTER (WHERE status = 'completed'),"
            f" count(*) FILTER (WHERE status IN ('failed', 'cancelled', 'blocked'))"
            f" FROM {RUNS} WHERE workflow_id LIKE %s",
            (pattern,),
        )
        if broken:
            raise RuntimeError(f"{broken} run(s) failed or blocked; see the worker log")
        return bool(done >= expected)

    def burst_done(self) -> bool:
        return self.finished("burst-%", self.scenario.workflows)

    def solo(self, timeout: float) -> None:
        for index in range(self.scenario.solo):
            workflow_id = f"solo-{index}"
            self.start(workflow_id, self.scenario.workflows + index)
            wait_for(lambda w=workflow_id: self.finished(w, 1), timeout=timeout, interval=0.005, what=workflow_id)

    def timings(self) -> tuple[list[tuple[float, float]], list[float]]:
        """(start, end) of each burst run by the database clock, and the solo runs' latencies."""
        rows = list(
            WorkflowRun.objects.filter(status=WorkflowRun.Status.COMPLETED).values_list(
                "workflow_id", "created_at", "finished_at"
            )
        )
        burst = [(created.timestamp(), done.timestamp()) for wid, created, done in rows if wid.startswith("burst-")]
        solo = [(done - created).total_seconds() * 1000 for wid, created, done in rows if wid.startswith("solo-")]
        return burst, solo

    def check(self) -> None:
        if self.scenario.workflow == "bench.atomic":
            expected = (self.scenario.workflows + self.scenario.solo) * self.scenario.steps
            inserted = Row.objects.count()
            if inserted != expected:
                raise RuntimeError(f"atomic steps inserted {inserted} rows, expected exactly {expected}")


class ChainDriver:
    """Sends plain Celery chains and watches for each chain's last insert."""

    def __init__(self, scenario: Scenario, poller: Poller) -> None:
        self.scenario = scenario
        self.poller = poller
        self.sent: dict[int, float] = {}

    def start(self, series: int) -> None:
        self.sent[series] = time.time()
        tasks.start_chain(series, self.scenario.steps)

    def burst(self) -> None:
        for series in range(self.scenario.workflows):
            self.start(series)

    def finished(self, first: int, expected: int) -> bool:
        (done,) = self.poller.row(
            f"SELECT count(*) FROM {ROWS} WHERE seq = %s AND series >= %s", (self.scenario.steps - 1, first)
        )
        return bool(done >= expected)

    def burst_done(self) -> bool:
        return self.finished(0, self.scenario.workflows)

    def solo(self, timeout: float) -> None:
        for index in range(self.scenario.solo):
            series = self.scenario.workflows + index
            self.start(series)
            wait_for(lambda s=series: self.finished(s, 1), timeout=timeout, interval=0.005, what=f"chain {series}")

    def timings(self) -> tuple[list[tuple[float, float]], list[float]]:
        last = dict(Row.objects.filter(seq=self.scenario.steps - 1).values_list("series", "created_at"))
        burst = [(self.sent[s], last[s].timestamp()) for s in range(self.scenario.workflows)]
        solo = [
            (last[s].timestamp() - self.sent[s]) * 1000
            for s in range(self.scenario.workflows, self.scenario.workflows + self.scenario.solo)
        ]
        return burst, solo

    def check(self) -> None:
        expected = (self.scenario.workflows + self.scenario.solo) * self.scenario.steps
        inserted = Row.objects.count()
        if inserted != expected:
            raise RuntimeError(f"chains inserted {inserted} rows, expected {expected}")


class PlainChainDriver:
    """Sends Celery chains of ``value + 1`` tasks that touch no database; each chain's last task reports to Redis."""

    def __init__(self, scenario: Scenario, poller: Poller) -> None:
        self.scenario = scenario
        self.poller = poller  # unused: nothing to ask the database
        self.sent: dict[int, float] = {}

    def start(self, series: int) -> None:
        self.sent[series] = time.time()
        tasks.start_plain_chain(series, self.scenario.steps)

    def burst(self) -> None:
        for series in range(self.scenario.workflows):
            self.start(series)

    def burst_done(self) -> bool:
        return len(tasks.plain_chains_done()) >= self.scenario.workflows

    def solo(self, timeout: float) -> None:
        for index in range(self.scenario.solo):
            series = self.scenario.workflows + index
            self.start(series)
            wait_for(lambda s=series: s in tasks.plain_chains_done(), timeout=timeout, interval=0.005,
                     what=f"chain {series}")  # fmt: skip

    def timings(self) -> tuple[list[tuple[float, float]], list[float]]:
        done = tasks.plain_chains_done()
        burst = [(self.sent[s], done[s][1]) for s in range(self.scenario.workflows)]
        solo = [
            (done[s][1] - self.sent[s]) * 1000
            for s in range(self.scenario.workflows, self.scenario.workflows + self.scenario.solo)
        ]
        return burst, solo

    def check(self) -> None:
        done = tasks.plain_chains_done()
        expected = self.scenario.workflows + self.scenario.solo
        wrong = [s for s, (value, _) in done.items() if value != self.scenario.steps]
        if len(done) != expected or wrong:
            raise RuntimeError(f"{len(done)} chains finished of {expected}; {len(wrong)} with a wrong result")


Driver = DurableDriver | ChainDriver | PlainChainDriver


def driver_for(scenario: Scenario, poller: Poller) -> Driver:
    kinds: dict[str, type[Driver]] = {"durable": DurableDriver, "chain": ChainDriver, "plain-chain": PlainChainDriver}
    return kinds[scenario.kind](scenario, poller)
