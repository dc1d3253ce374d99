"""What the workers are doing, as PostgreSQL sees it: their sessions, and the step leases their processes hold.

The injector aims its faults with these reads and checks with them that a fault landed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, TypedDict

from django.db import connection
from django.db.models import Q
from django.db.models.functions import Now

from .cluster import Cluster


class Session(TypedDict):
    """One worker process's database sessions: (backend pid, state, in a transaction) each."""

    backends: list[tuple[int, str, bool]]
    in_tx: bool


def sessions() -> dict[int, Session]:
    """Worker database sessions by OS pid: backend pid, whether a transaction is open."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, xact_start IS NOT NULL AND state <> 'idle' "
            "FROM pg_stat_activity WHERE application_name LIKE 'chaos-worker:%%' AND pid <> pg_backend_pid()"
        )
        rows = cursor.fetchall()
    found: dict[int, Session] = {}
    for backend, name, state, in_tx in rows:
        try:
            pid = int(name.rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        session = found.setdefault(pid, {"backends": [], "in_tx": False})
        session["backends"].append((backend, state, bool(in_tx)))
        session["in_tx"] = session["in_tx"] or bool(in_tx)
    return found


def in_transaction(found: dict[int, Session], pid: int) -> bool:
    """Whether process ``pid`` has a transaction open, by ``sessions()``."""
    session = found.get(pid)
    return session is not None and session["in_tx"]


def leases() -> Counter[int]:
    """Live step leases, counted by the pid of the process that holds them."""
    from durable_django.models import WorkItem

    owners = WorkItem.objects.filter(kind=WorkItem.Kind.STEP, lease_expires_at__gt=Now()).values_list(
        "owner", flat=True
    )
    leased: Counter[int] = Counter()
    for owner in owners:
        pid = Cluster.pid_of(owner)
        if pid is not None:
            leased[pid] += 1
    return leased


def held_after_death(pids: list[int]) -> int:
    """Step leases still held by these (dead) processes: they died holding them."""
    from durable_django.models import WorkItem

    held = Q()
    for pid in pids:
        held |= Q(owner__startswith=Cluster.owner(pid))
    return WorkItem.objects.filter(held, kind=WorkItem.Kind.STEP, lease_expires_at__isnull=False).count()


def leased_items(pid: int) -> dict[int, int]:
    """The step items process ``pid`` holds a live lease of: id and fencing token."""
    from durable_django.models import WorkItem

    return dict(
        WorkItem.objects.filter(
            kind=WorkItem.Kind.STEP, owner__startswith=Cluster.owner(pid), lease_expires_at__gt=Now()
        ).values_list("pk", "token")
    )


def describe(held: dict[int, int]) -> list[dict[str, Any]]:
    """The items (id: token) for the timeline: their run, seq and history entry."""
    from durable_django.models import HistoryEntry, WorkItem

    described = []
    for item in WorkItem.objects.filter(pk__in=list(held)).select_related("run"):
        entry = (  # a step's item always has a seq; a seq of None would find no entry either
            None
            if item.seq is None
            else HistoryEntry.objects.filter(run_id=item.run_id, seq=item.seq).values("name", "status").first()
        )
        described.append(
            {"item": item.pk, "token": item.token, "run": item.run.workflow_id, "seq": item.seq, "entry": entry}
        )
    return described


def tokens(held: dict[int, int]) -> dict[int, int]:
    """The current fencing token of each of these items (id: token); a finished item is gone."""
    from durable_django.models import WorkItem

    return dict(WorkItem.objects.filter(pk__in=list(held)).values_list("pk", "token"))
