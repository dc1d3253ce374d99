"""Many sleeping workflows: what they cost while they sleep, and how late they fire.

``N`` runs of ``bench.sleeper`` (one ``durable.sleep_until(t)``, then the end) are started
through the public API, ``chunk`` starts per transaction, with a real Celery worker
running. Their wake-up times are spread evenly, ``fire_rate`` per second, starting once
all of them should be asleep. Measured:

- the start: starts per second in the driver, and until every run is asleep (``waiting``);
- the database size per run: ``pg_total_relation_size`` of durable_django's tables (heap,
  indexes, TOAST) while every run sleeps, divided by ``N``;
- the CPU the worker (main process and pool) and its PostgreSQL backends use while every
  run sleeps, from ``/proc/<pid>/stat`` (utime + stime) over a window;
- fire lateness: ``HistoryEntry.finished_at - fire_at`` of each sleep (when the timer was
  taken, by the database's clock), and the same to the run's completion;
- before all that, with no worker running, the driver's start rate three ways (one
  ``start()`` per transaction, ``chunk`` ``start()`` calls per transaction, and
  ``start_many()`` of ``chunk``); after it, the rate at which finished runs are pruned by the
  same function the workers' sweepers call under ``DURABLE_RETENTION``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connections, transaction

import durable_django as durable
from durable_django.models import HistoryEntry, Signal, WorkflowRun, WorkItem
from durable_django.ops import prune

from .benchapp.workflows import sleeper
from .machine import TICKS, CpuWatch, wait_quiet
from .pgstats import Poller
from .scenarios import Bench, Scenario, _log_counts, _reset, _stop, _worker

__all__ = ["measure_sleepers"]

TABLES = [model._meta.db_table for model in (WorkflowRun, HistoryEntry, WorkItem, Signal)]
RUNS = WorkflowRun._meta.db_table
PENDING, RUNNING = WorkflowRun.Status.PENDING, WorkflowRun.Status.RUNNING
WAITING, COMPLETED = WorkflowRun.Status.WAITING, WorkflowRun.Status.COMPLETED
ENTRIES = HistoryEntry._meta.db_table


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _count(poller: Poller, *statuses: str) -> int:
    (value,) = poller.row(f"SELECT count(*) FROM {RUNS} WHERE status = ANY(%s)", (list(statuses),))
    return int(value)


def _poll(
    read: Callable[[], int], done: Callable[[int], bool], deadline: float, what: str, *, interval: float, stall: float
) -> tuple[float, int]:
    """Read every ``interval`` s until ``done``; returns when (monotonic) and the last value read.

    Stops early at ``deadline``, or once the value has not moved for ``stall`` seconds,
    and says so: a partial result is still a result.
    """
    last, moved = -1, time.monotonic()
    while not done(value := read()):
        if value != last:
            last, moved = value, time.monotonic()
        if time.monotonic() > deadline or time.monotonic() - moved > stall:
            print(f"    gave up waiting for {what}: {value:,} (see the worker log)", flush=True)
            break
        time.sleep(interval)
    return time.monotonic(), value


def _wait_count(
    poller: Poller, statuses: tuple[str, ...], expected: int, deadline: float, what: str, *, stall: float = 120.0
) -> tuple[float, int]:
    """Poll every 0.2 s until ``expected`` runs have one of ``statuses``; returns when (monotonic) and how many."""
    return _poll(lambda: _count(poller, *statuses), lambda now: now >= expected, deadline,
                 f"{what} (of {expected:,})", interval=0.2, stall=stall)  # fmt: skip


def _wait_asleep(poller: Poller, deadline: float, *, stall: float = 120.0) -> tuple[float, int]:
    """Poll every 0.5 s until no run is pending or running; returns when, and how many still are (0: all asleep).

    Counts the few runs not yet asleep through the status index, never the many asleep ones:
    a count of those is a scan of a million rows.
    """
    return _poll(lambda: _count(poller, PENDING, RUNNING), lambda left: left == 0, deadline,
                 "the sleepers (runs not asleep)", interval=0.5, stall=stall)  # fmt: skip


def _status(poller: Poller, workflow_id: str) -> str | None:
    row = poller.connection.execute(f"SELECT status FROM {RUNS} WHERE workflow_id = %s", (workflow_id,)).fetchone()
    poller.queries += 1
    return None if row is None else str(row[0])


def _quantiles(poller: Poller, table: str, column: str, where: str = "true") -> list[float]:
    """Epoch seconds of ``column`` at 0 %, 10 %, 90 % and 100 % of the rows of ``table``, in time order."""
    (values,) = poller.row(
        f"SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY {column}) FROM {table} WHERE {where}",
        ([0.0, 0.1, 0.9, 1.0],),
    )
    return [value.timestamp() for value in values]


def _rate_windows(poller: Poller, count: int, chunk: int) -> dict[str, Any]:
    """Starts per second and first advances per second over the first and the last 10 % of the runs.

    By the database's clock: each run's ``created_at`` is its start's transaction, its sleep
    entry's ``scheduled_at`` the transaction of its first advance. Whether the rate falls as the
    tables grow is the end's rate against the beginning's. Only where a tenth of the runs is at
    least 10 transactions of starts (they share their transaction's time): else empty.
    """
    tenth = count / 10
    windows: dict[str, Any] = {}
    if tenth < 10 * chunk:
        return windows
    for name, (table, column, where) in {
        "starts": (RUNS, "created_at", "true"),
        "asleep": (ENTRIES, "scheduled_at", "kind = 'sleep'"),
    }.items():
        first, tenth_at, ninth_at, last = _quantiles(poller, table, column, where)
        begin, end = tenth / max(tenth_at - first, 1e-9), tenth / max(last - ninth_at, 1e-9)
        windows[name] = {"first_10pct_per_second": begin, "last_10pct_per_second": end, "end_over_begin": end / begin,
                         "first_at": first, "last_at": last}  # fmt: skip
    return windows


def _start(
    first: int,
    count: int,
    chunk: int,
    due: Callable[[int], datetime],
    prefix: str,
    deadline: float,
    throttle: Callable[[int], None] = lambda started: None,
    *,
    bulk: bool = False,
) -> None:
    """Start runs ``first`` to ``first + count - 1`` through the public API, ``chunk`` per transaction.

    ``bulk``: one ``start_many()`` per chunk, else ``chunk`` calls of ``start()`` in one transaction.
    """
    for low in range(first, first + count, chunk):
        throttle(low)
        indexes = range(low, min(low + chunk, first + count))
        with transaction.atomic():
            if bulk:
                sleeper.start_many(
                    durable.RunArgs(due(index).isoformat(), workflow_id=f"{prefix}-{index}") for index in indexes
                )
            else:
                for index in indexes:
                    sleeper.start(due(index).isoformat(), workflow_id=f"{prefix}-{index}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"starting {count:,} sleepers took too long")


def _start_rates(bench: Bench, count: int, chunk: int) -> dict[str, float]:
    """Starts per second in the driver, no worker running: the cost of starting alone, three ways."""
    wake = datetime.now(UTC) + timedelta(days=1)
    rates: dict[str, float] = {}
    for mode, size, bulk in (
        ("one_per_transaction", 1, False),
        ("per_transaction", chunk, False),
        ("bulk", chunk, True),
    ):
        began = time.monotonic()
        _start(0, count, size, lambda index: wake, f"rate-{mode}", began + 600.0, bulk=bulk)
        rates[mode] = count / (time.monotonic() - began)
        connections.close_all()
        _reset(bench)
        connections.close_all()
    return rates


def _prune_rate(poller: Poller) -> dict[str, float]:
    """Finished runs deleted per second by the sweepers' pruning function (all of them, in batches of 500)."""
    runs = _count(poller, COMPLETED)
    began = time.monotonic()
    deleted = sum(batch.runs for batch in prune.prune(timedelta(0), batch_size=500))
    seconds = time.monotonic() - began
    connections.close_all()
    return {"runs": runs, "deleted": deleted, "seconds": seconds, "runs_per_second": deleted / max(seconds, 1e-9)}


def _pilot(bench: Bench, poller: Poller, count: int, chunk: int, timeout: float, *, bulk: bool = False) -> float:
    """Runs per second from the first start until all are asleep, measured on ``count`` sleepers.

    They sleep for an hour; once measured, the tables and the broker are emptied again
    (the worker is idle by then), so the measured runs start from empty tables.
    """
    began = time.monotonic()
    wake = datetime.now(UTC) + timedelta(hours=1)
    _start(0, count, chunk, lambda index: wake, "pilot", began + timeout, bulk=bulk)
    connections.close_all()
    asleep, done = _wait_count(poller, (WAITING,), count, began + timeout, f"{count} pilot sleepers")
    if done < count:
        raise RuntimeError(f"only {done} of {count} pilot sleepers went to sleep; see the worker log")
    _reset(bench)
    connections.close_all()
    return count / (asleep - began)


def _analyze_without_autovacuum(poller: Poller) -> bool:
    """ANALYZE durable_django's tables if the server runs without autovacuum; returns whether it did.

    On a default server autovacuum analyzes a table within a minute of it changing by 10 %;
    with it off (as on this project's development machine) the benchmark's freshly filled
    tables have no statistics at all, and the planner takes ``run_id = ANY(...)`` of a batch of
    30 runs for 15 % of the table: sequential scans, 35 ms a batch at 50,000 runs against 0.1 ms.
    """
    (autovacuum,) = poller.row("SELECT current_setting('autovacuum')")
    if autovacuum == "on":
        return False
    poller.connection.execute(f"ANALYZE {', '.join(TABLES)}")
    poller.queries += 1
    return True


def _sizes(poller: Poller) -> dict[str, int]:
    return {table: int(poller.row("SELECT pg_total_relation_size(%s)", (table,))[0]) for table in TABLES}


def _backends(poller: Poller, dbname: str) -> list[int]:
    """PostgreSQL backends of the benchmark database, other than the poller's own."""
    rows = poller.connection.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
    ).fetchall()
    poller.queries += 1
    return [int(row[0]) for row in rows]


def _rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (``VmRSS``), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _idle_cpu(worker_pids: list[int], backend_pids: list[int], seconds: float) -> dict[str, float]:
    """CPU seconds per second used by the worker's processes and by its backends over ``seconds``."""
    before = {pid: _ticks(pid) for pid in worker_pids + backend_pids}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    after = {pid: _ticks(pid) for pid in worker_pids + backend_pids}
    worker = sum(after[pid] - before[pid] for pid in worker_pids) / TICKS
    backends = sum(after[pid] - before[pid] for pid in backend_pids) / TICKS
    return {
        "worker_rss_bytes": sum(_rss(pid) for pid in worker_pids),
        "window_seconds": elapsed,
        "worker_cpu_seconds": worker,
        "backend_cpu_seconds": backends,
        "worker_cpu_share": worker / elapsed,
        "backend_cpu_share": backends / elapsed,
    }


def _lateness(poller: Poller) -> dict[str, Any]:
    """Seconds from each sleep's fire_at to its timer being taken, and to its run completing."""
    fractions = [0.5, 0.9, 0.99, 0.999]
    row = poller.row(
        f"""
        SELECT count(*),
               count(*) FILTER (WHERE e.finished_at < e.fire_at),
               min(extract(epoch FROM e.finished_at - e.fire_at)),
               percentile_cont(%s::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM e.finished_at - e.fire_at)),
               max(extract(epoch FROM e.finished_at - e.fire_at)),
               percentile_cont(%s::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - e.fire_at)),
               max(extract(epoch FROM r.finished_at - e.fire_at)),
               extract(epoch FROM min(e.fire_at)), extract(epoch FROM max(e.fire_at)),
               extract(epoch FROM max(e.finished_at))
          FROM {ENTRIES} e JOIN {RUNS} r ON r.id = e.run_id
         WHERE e.kind = 'sleep' AND e.status = 'completed'
        """,
        (fractions, fractions),
    )
    count, early, low, fired, high, completed, completed_max, first_due, last_due, last_fired = row
    names = ["p50", "p90", "p99", "p99.9"]
    fire = {"min": float(low), **{n: float(v) for n, v in zip(names, fired, strict=True)}, "max": float(high)}
    done = {**{n: float(v) for n, v in zip(names, completed, strict=True)}, "max": float(completed_max)}
    due_window = float(last_due) - float(first_due)
    return {
        "fired": int(count),
        "fired_early": int(early),
        "fire_lateness_seconds": fire,
        "completion_lateness_seconds": done,
        "due_window_seconds": due_window,
        "fire_window_seconds": float(last_fired) - float(first_due),
    }


def measure_sleepers(
    bench: Bench,
    count: int,
    *,
    chunk: int = 500,
    fire_rate: float = 200.0,
    due_count: int | None = None,
    asleep_within: float = 80.0,
    idle_window: float = 30.0,
    pilot: int = 1000,
    bulk: bool = True,
    start_rate_runs: int = 2000,
    backlog_seconds: float = 20.0,
    flat_start_target: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Start ``count`` sleepers, measure them asleep, let ``due_count`` of them fire, and return the figures.

    A pilot of ``pilot`` sleepers first measures how fast runs are started and put to
    sleep on this machine now; the first wake-up is planned that long (with a 50 % margin)
    plus ``idle_window`` after the first start. If starting is slower than planned, the
    idle window shrinks (the result says so). ``due_count`` sleepers (all, by default),
    spread evenly over the starts, come due ``fire_rate`` a second; the others sleep 30 days
    more. ``asleep_within`` is the target for all of them asleep, in seconds; with
    ``flat_start_target`` the start rate over the last 10 % of the runs must be within 20 % of
    the first 10 %'s.
    """
    due = count if due_count is None else max(1, min(due_count, count))
    stride = count // due
    _reset(bench)
    connections.close_all()
    wait_quiet(bench.quiet_below, bench.quiet_timeout, say=say)
    start_rates = _start_rates(bench, start_rate_runs, chunk) if start_rate_runs else {}
    if start_rates:
        say("    starts/s, no worker: " + ", ".join(f"{mode} {rate:,.0f}" for mode, rate in start_rates.items()))
    worker = _worker(bench, Scenario("sleepers", "sleepers", "durable", count, 1), 1)
    poller: Poller | None = None
    began = time.monotonic()
    sizes: dict[str, int] = {}
    analyzed = 0
    try:
        worker.start()
        poller = Poller(bench.database_url)
        rate = _pilot(bench, poller, min(pilot, count), chunk, timeout=120.0, bulk=bulk)
        settle = count / rate * 1.5 + idle_window + 5.0
        say(f"    pilot: {rate:,.0f} runs/s started and asleep; first wake-up planned in {settle:.0f} s")
        first_due = datetime.now(UTC) + timedelta(seconds=settle)
        later = first_due + timedelta(days=30)
        deadline = time.monotonic() + 3 * settle + 120.0  # bounds the start and the wait for sleep
        t0 = time.monotonic()
        step = max(chunk, count // 5 // chunk * chunk)
        # The driver keeps about ``backlog_seconds`` of first advances ahead of the worker, no more:
        # so it starts at the rate the worker puts runs to sleep, at the beginning as at the end,
        # and an advance item never waits long enough to be published again by the sweeper. It
        # asks whether the run that many starts back is asleep: one lookup by key, where a count
        # of the runs asleep would read them all.
        backlog = max(chunk, int(rate * backlog_seconds))
        analyze_at = [count * tenth // 10 for tenth in range(1, 10)]

        def throttle(started: int) -> None:
            nonlocal analyzed
            assert poller is not None
            if analyze_at and started >= analyze_at[0]:
                # What autovacuum's analyze does as a table grows by 10 %, where it is off.
                del analyze_at[0]
                analyzed += _analyze_without_autovacuum(poller)
            if started < backlog:
                return
            behind = f"sleep-{started - backlog}"
            limit = time.monotonic() + 60.0  # queue order is nearly, not exactly, start order
            while _status(poller, behind) in (PENDING, RUNNING) and time.monotonic() < min(limit, deadline):
                time.sleep(0.1)

        def due_at(index: int) -> datetime:
            if index % stride or index // stride >= due:
                return later
            return first_due + timedelta(seconds=index // stride / fire_rate)

        for low in range(0, count, step):
            _start(low, min(step, count - low), chunk, due_at, "sleep", deadline, throttle, bulk=bulk)
            if low + step < count:
                say(f"    started {low + step:,} ({(low + step) / (time.monotonic() - t0):,.0f}/s)")
        started = time.monotonic()
        connections.close_all()
        # Asleep, or already fired if starting was slower than planned (then there is no idle window).
        asleep_at, not_asleep = _wait_asleep(poller, deadline)
        early_fired = _count(poller, COMPLETED)
        windows = _rate_windows(poller, count, chunk)
        say(
            f"    {count:,} started in {started - t0:.0f} s, all asleep after {asleep_at - t0:.0f} s; "
            f"first wake-up in {(first_due - datetime.now(UTC)).total_seconds():.0f} s"
        )
        if _analyze_without_autovacuum(poller):
            analyzed += 1
            say("    autovacuum is off on this server: ANALYZE of durable_django's tables (autovacuum's job)")
        sizes = _sizes(poller)
        # The worker's processes and backends while everything sleeps, until 1 s before the first wake-up.
        window = min(idle_window, (first_due - datetime.now(UTC)).total_seconds() - 1.0)
        idle: dict[str, Any] | None = None
        if window >= 1.0 and not early_fired:
            idle = _idle_cpu([worker.pid, *worker.children()], _backends(poller, bench.admin.dbname), window)
        else:
            say("    no idle window: starting took longer than the pilot predicted")
        delay = (first_due - datetime.now(UTC)).total_seconds()
        if delay > 0:
            time.sleep(delay)
        watch = CpuWatch(bench.admin.dbname, worker.pid)
        fire_deadline = time.monotonic() + 2 * due / fire_rate + 120.0
        fired_at, fired = _wait_count(poller, (COMPLETED,), due, fire_deadline, f"{due:,} sleepers to fire")
        usage = watch.read()
        lateness = _lateness(poller)
        pruned = _prune_rate(poller)
    except BaseException:
        worker.kill()
        raise
    finally:
        _stop(worker)
        if poller is not None:
            poller.close()
        connections.close_all()
    republished, refused = _log_counts(worker)
    # By the database's clock where measured: the poll sees it up to 0.5 s late.
    asleep_after = windows["asleep"]["last_at"] - windows["starts"]["first_at"] if windows else asleep_at - t0
    return {
        "count": count,
        "due_count": due,
        "asleep_within_target_seconds": asleep_within,
        "flat_start_target": flat_start_target,
        "chunk": chunk,
        "bulk": bulk,
        "backlog_runs": backlog,
        "start_rates": start_rates,
        "rate_windows": windows,
        "prune": pruned,
        "pilot_runs_per_second": rate,
        "start_seconds": started - t0,
        "starts_per_second": count / (started - t0),
        "not_asleep": not_asleep,
        "asleep_after_seconds": asleep_after,
        "asleep_per_second": count / asleep_after,
        "asleep_seen_after_seconds": asleep_at - t0,
        "bytes_per_run": sum(sizes.values()) / count,
        "table_bytes": sizes,
        "analyzed_for_autovacuum": analyzed,
        "idle": idle,
        "fire_rate_planned": fire_rate,
        "fired_per_second": due / max(lateness["fire_window_seconds"], 1e-9),
        "firing_seconds": fired_at - t0 - settle,
        "fired_in_time": fired,
        "fired_before_all_asleep": early_fired,
        "firing_machine_busy": usage.busy,
        "firing_other_cpu": usage.other,
        "sweeper_republished": republished,
        "stale_writes_refused": refused,
        **lateness,
        "total_seconds": time.monotonic() - began,
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The sleepers' figures, for the printed report."""
    fire = result["fire_lateness_seconds"]
    done = result["completion_lateness_seconds"]
    idle = result["idle"]
    due = result.get("due_count", result["count"])
    sizes = ", ".join(f"{table.removeprefix('durable_django_')} {size / result['count']:.0f}"
                      for table, size in result["table_bytes"].items())  # fmt: skip
    how = "start_many() of" if result.get("bulk") else "start() calls, transactions of"
    which = "" if due == result["count"] else f", {due:,} of them due, the rest 30 days later"
    lines = [
        f"{result['count']:,} sleeping workflows (sleep_until; {how} {result['chunk']:,}{which}), "
        "one worker of 2 processes:"
    ]
    rates = result.get("start_rates") or {}
    if rates:
        lines.append(
            f"  starts/s        no worker running: one start() per transaction {rates['one_per_transaction']:,.0f}, "
            f"{result['chunk']:,} per transaction {rates['per_transaction']:,.0f}, start_many() {rates['bulk']:,.0f}"
        )
    lines += [
        f"  start           {result['starts_per_second']:,.0f} starts/s in the driver "
        f"({result['start_seconds']:.0f} s); all asleep after {result['asleep_after_seconds']:.0f} s "
        f"({result['asleep_per_second']:,.0f} runs/s; the pilot predicted {result['pilot_runs_per_second']:,.0f})",
    ]
    windows = result.get("rate_windows")
    if windows:
        starts, asleep = windows["starts"], windows["asleep"]
        lines.append(
            f"  as tables grew  first / last 10 % of the runs: started {starts['first_10pct_per_second']:,.0f} / "
            f"{starts['last_10pct_per_second']:,.0f} a second, put to sleep {asleep['first_10pct_per_second']:,.0f} / "
            f"{asleep['last_10pct_per_second']:,.0f} (database clock)"
        )
    lines.append(f"  database        {result['bytes_per_run']:,.0f} bytes per sleeping run ({sizes})")
    if result["fired_in_time"] < due:
        lines.append(f"  INCOMPLETE      only {result['fired_in_time']:,} fired within the time allowed")
    if idle is None:
        lines.append(
            f"  asleep CPU      not measured: no idle window ({result['fired_before_all_asleep']:,} fired "
            "before the last one was asleep)"
        )
    else:
        lines.append(
            f"  asleep CPU      worker processes {idle['worker_cpu_share']:.2%} of a core, their PostgreSQL backends "
            f"{idle['backend_cpu_share']:.2%}, over {idle['window_seconds']:.0f} s"
            + (f"; worker memory {idle['worker_rss_bytes'] / 2**20:,.0f} MB" if "worker_rss_bytes" in idle else "")
        )
    lines += [
        f"  fire lateness   p50 {fire['p50']:.2f} s, p90 {fire['p90']:.2f}, p99 {fire['p99']:.2f}, "
        f"max {fire['max']:.2f} (min {fire['min']:.3f}; {result['fired_early']} early)",
        f"  to completion   p50 {done['p50']:.2f} s, p99 {done['p99']:.2f}, max {done['max']:.2f}",
        f"  due rate        {result['fire_rate_planned']:,.0f}/s planned over {result['due_window_seconds']:.0f} s; "
        f"fired {result['fired_per_second']:,.0f}/s (other CPU while firing {result['firing_other_cpu']:.0%})",
    ]
    pruned = result.get("prune")
    if pruned:
        lines.append(
            f"  prune           {pruned['runs_per_second']:,.0f} finished runs deleted/s "
            f"({pruned['deleted']:,} in {pruned['seconds']:.1f} s, batches of 500, as DURABLE_RETENTION does)"
        )
    lines += _verdicts(result)
    return lines


def _verdicts(result: dict[str, Any]) -> list[str]:
    """The issue's targets for sleepers, met or not, from this run's figures."""
    fire = result["fire_lateness_seconds"]
    count, due = result["count"], result.get("due_count", result["count"])
    within = result.get("asleep_within_target_seconds", 80.0)
    all_fired = result["fired_in_time"] == due
    rows = [
        (f"all {count:,} asleep within {within:,.0f} s of the first start", result["asleep_after_seconds"],
         f"<= {within:,.0f} s", result["asleep_after_seconds"] <= within),
        (f"first advances/s ({count:,} runs, start to all asleep)", result["asleep_per_second"],
         f">= {count / within:,.0f}", result["asleep_per_second"] >= count / within),
    ]  # fmt: skip
    windows = result.get("rate_windows")
    if windows:
        # The target for the million; where the driver's lead over the worker (its backlog)
        # is a large part of the first tenth, the first window is a burst, so it is shown only.
        flat = result.get("flat_start_target", due < count)  # files written before the flag: the large run
        for name, what in (("starts", "start rate"), ("asleep", "first advances/s")):
            ratio = windows[name]["end_over_begin"]
            rows.append((f"{what}, last 10 % of the runs / first 10 %", ratio, ">= 0.80" if flat else "reference",
                         ratio >= 0.8 if flat else None))  # fmt: skip
    rows += [
        (f"fire lateness p99 at {result['fire_rate_planned']:,.0f} due/s", fire["p99"], "<= 0.5 s",
         fire["p99"] <= 0.5 and all_fired),
        (f"fire lateness p50 at {result['fire_rate_planned']:,.0f} due/s", fire["p50"], "<= 0.1 s",
         fire["p50"] <= 0.1 and all_fired),
        ("timers fired early", result["fired_early"], "== 0", result["fired_early"] == 0),
        ("timers not fired (lost or too late)", due - result["fired_in_time"], "== 0", all_fired),
    ]  # fmt: skip
    lines = ["  targets (issue 11):"]
    for label, value, goal, met in rows:
        outcome = "" if met is None else "met" if met else "MISSED"
        lines.append(f"    {label:<58} {value:>10,.2f}   {goal:<9} {outcome}".rstrip())
    return lines
