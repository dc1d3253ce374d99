"""A lease names its process uniquely: a sweeper in another PID namespace never takes a live step away.

Two containers can share a hostname (host networking, a fixed ``hostname:``) and number their
processes alike. A sweeper judges only owners it can see: same host, PID namespace and boot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import owners
from tests.support.processes import ROOT
from tests.testapp.workflows import long_holder

from .waiting import wait_finished, wait_for

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0, reason="needs root and util-linux's unshare"),
]

SWEEP_ONCE = """
import django
django.setup()
from durable_django.worker.sweeper import reclaim_dead_owners
print("reclaimed", reclaim_dead_owners())
"""


def sweep_in_another_pid_namespace(worker_env: dict[str, str]) -> str:
    """One reclaim pass by a process alone in a new PID namespace (it is pid 1 there), on this host."""
    env = {**os.environ, **worker_env, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", SWEEP_ONCE]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_a_sweeper_in_another_pid_namespace_leaves_a_live_steps_lease_alone(worker, worker_env):
    run = long_holder.start(4)
    item = wait_for(
        lambda: WorkItem.objects.filter(run=run, kind=WorkItem.Kind.STEP, lease_expires_at__isnull=False).first(),
        timeout=20,
        what="the step to be leased",
    )
    holder = owners.Owner.parse(item.owner)
    assert holder is not None and holder.host == owners.HOST
    # In the other namespace the holder's pid does not exist: a hostname:pid identity would call it dead.
    assert sweep_in_another_pid_namespace(worker_env) == "reclaimed 0"
    item.refresh_from_db()
    assert (item.owner, item.token) == (str(holder), 1), "the live step's lease was taken away"
    (run,) = wait_finished([run], timeout=30)
    assert run.status == WorkflowRun.Status.COMPLETED
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 1, "the step ran twice at once"


def test_an_owner_is_unique_to_its_process_namespace_boot_and_start():
    me = owners.current()
    assert (me.host, me.pid) == (owners.HOST, os.getpid())
    assert me.namespace and me.boot and me.started
    assert owners.Owner.parse(str(me)) == me
    assert not owners.is_dead(str(me))
    reused = owners.Owner(me.host, me.pid, me.namespace, me.boot, str(int(me.started) + 1))
    assert owners.is_dead(str(reused)), "a pid reused by a later process must not keep the dead one's lease"
    elsewhere = owners.Owner(me.host, 999_999, "1", me.boot, "1")
    assert not owners.is_dead(str(elsewhere)), "a process of another PID namespace cannot be judged from here"
    assert not owners.is_dead(f"{me.host}:{me.pid}"), "an older host:pid owner is left to its lease"
