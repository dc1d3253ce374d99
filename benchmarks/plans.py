"""The query plans of the sweeper's and the workers' polling queries at a large row count.

``python -m benchmarks.plans --rows 1000000`` fills the benchmark database (``durable_bench``,
emptied first) with ``rows`` sleeping runs (a run, its sleep entry and its timer each), a
fifth as many finished runs, and as many dead index entries again (work items inserted and
deleted, as finished work leaves them until vacuum), then prints ``EXPLAIN (ANALYZE,
BUFFERS)`` of each query the sweeper and the workers repeat. Their cost must not grow with
the tables: each plan should read a handful of buffers, whatever ``rows`` is.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")


def fill(rows: int) -> None:
    from django.db import connection

    from durable_django.models import HistoryEntry, WorkflowRun, WorkItem

    run, entry, item = (model._meta.db_table for model in (WorkflowRun, HistoryEntry, WorkItem))
    finished = rows // 5
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {item}, {entry}, {run} RESTART IDENTITY CASCADE")
        # Sleeping runs: due from an hour from now on, 500 a second (what the sweeper waits for).
        cursor.execute(
            f"""
            INSERT INTO {run} (id, workflow_id, workflow_name, status, input_json, next_seq, generation,
                cancel_requested, created_at, updated_at, attributes, subject_type, subject_id)
            SELECT md5('s' || n)::uuid, 'sleep-' || n, 'bench.sleeper', 'waiting', '[[], {{}}]', 1, 0, false,
                now(), now(), '{{}}', '', ''
            FROM generate_series(1, %s) AS n""",
            [rows],
        )
        cursor.execute(
            f"""
            INSERT INTO {entry} (run_id, seq, kind, name, args_json, status, attempts, scheduled_at, fire_at)
            SELECT md5('s' || n)::uuid, 0, 'sleep', '', '{{}}', 'scheduled', 0, now(),
                now() + interval '1 hour' + n * interval '2 milliseconds'
            FROM generate_series(1, %s) AS n""",
            [rows],
        )
        cursor.execute(
            f"""
            INSERT INTO {item} (run_id, kind, seq, queue, available_at, lease_seconds, token, owner, failures)
            SELECT md5('s' || n)::uuid, 'timer', 0, '', now() + interval '1 hour' + n * interval '2 milliseconds',
                60, 0, '', 0
            FROM generate_series(1, %s) AS n""",
            [rows],
        )
        # Finished runs, finished over the last 60 days (what retention prunes).
        cursor.execute(
            f"""
            INSERT INTO {run} (id, workflow_id, workflow_name, status, input_json, result_json, next_seq,
                generation, cancel_requested, created_at, updated_at, finished_at, attributes, subject_type,
                subject_id)
            SELECT md5('f' || n)::uuid, 'done-' || n, 'bench.sleeper', 'completed', '[[], {{}}]', 'null', 1, 0,
                false, now(), now(), now() - n * interval '5 seconds', '{{}}', '', ''
            FROM generate_series(1, %s) AS n""",
            [finished],
        )
        # Dead rows: work that came and went (advances taken, timers fired) before a vacuum.
        cursor.execute(
            f"""
            INSERT INTO {item} (run_id, kind, seq, queue, available_at, lease_seconds, token, owner, failures,
                dispatched_at)
            SELECT md5('f' || (1 + n %% %s))::uuid, 'advance', NULL, '', now() - interval '1 day', 60, 0, '', 0,
                CASE WHEN n %% 2 = 0 THEN NULL ELSE now() END
            FROM generate_series(1, %s) AS n""",
            [finished, rows],
        )
        cursor.execute(f"DELETE FROM {item} WHERE kind = 'advance'")
        cursor.execute(f"ANALYZE {run}, {entry}, {item}")


def plans() -> list[tuple[str, str]]:
    from django.db.models import Q

    from durable_django.models import WorkItem
    from durable_django.ops.prune import candidates
    from durable_django.store import timers
    from durable_django.store.leases import db_now_plus

    using = "default"
    never_sent = timers.never_sent(using)
    late = Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=db_now_plus(-15))
    ready, expired = WorkItem.objects.ready().filter(late), WorkItem.objects.expired().filter(late)
    queries = [
        ("the next due instant (timers.due_in)", never_sent.order_by("available_at").values_list("available_at")[:1]),
        (
            "due timers to send (send_due, every wake-up)",
            never_sent.ready().order_by("available_at").values_list("pk", "queue", "kind")[:500],
        ),
        ("due items whose message is lost (the full sweep)", ready.order_by("available_at").values_list("pk")[:500]),
        ("expired leases (the full sweep)", expired.order_by("available_at").values_list("pk")[:500]),
        ("leases held (reclaim_dead_owners)", WorkItem.objects.leased().values_list("pk", "owner", "token")),
        ("finished runs past retention (prune)", candidates(timedelta(days=30)).order_by("finished_at", "pk")[:500]),
    ]
    return [(label, query.explain(analyze=True, buffers=True)) for label, query in queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="sleeping runs (1000000)")
    parser.add_argument("--no-fill", action="store_true", help="explain against the rows already there")
    args = parser.parse_args()
    django.setup()
    began = time.monotonic()
    if not args.no_fill:
        fill(args.rows)
    print(f"filled {args.rows:,} sleeping runs, {args.rows // 5:,} finished, {args.rows:,} dead items "
          f"in {time.monotonic() - began:.0f} s")  # fmt: skip
    for label, plan in plans():
        print(f"\n-- {label}\n{plan}")


if __name__ == "__main__":
    main()
