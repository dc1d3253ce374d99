"""Who holds a lease: a process identity that no other process shares, and whether that process still lives.

``hostname:pid`` is not unique: two containers may share a hostname (host networking, a
fixed ``hostname:`` in compose) and each numbers its processes from 1, and a pid is reused
after its process dies. So an owner is ``host:pid:namespace:boot:started`` (the PID
namespace's inode, this boot's id and the process's start time, all read from Linux's
``/proc``), and a sweeper judges only owners in its own PID namespace on its own boot: it
can see exactly those processes. Any other owner is left to its lease.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOST", "Owner", "current", "is_dead"]

#: This machine, as lease owners name it.
HOST = socket.gethostname()


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return ""


def _start_time(pid: int) -> tuple[str, str] | None:
    """The process's state letter and start time (clock ticks since boot), or None if it does not exist."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], fields[19]  # fields 3 and 22 of proc(5)


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    pid: int
    namespace: str
    boot: str
    started: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.namespace}:{self.boot}:{self.started}"

    @staticmethod
    def short(text: str) -> str:
        """``host:pid`` of a stored owner, for people (the namespace, boot and start time judge liveness only)."""
        owner = Owner.parse(text)
        return text if owner is None else f"{owner.host}:{owner.pid}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        parts = text.split(":")
        if len(parts) != 5 or not parts[1].isdigit():
            return None  # an older ``host:pid``, or nothing: it cannot be judged
        host, pid, namespace, boot, started = parts
        return cls(host, int(pid), namespace, boot, started)


_current: Owner | None = None


def current() -> Owner:
    """This process (computed again after a fork: pool children are other processes)."""
    global _current
    pid = os.getpid()
    if _current is None or _current.pid != pid:
        found = _start_time(pid)
        boot = _read("/proc/sys/kernel/random/boot_id").replace("-", "")[:12]
        _current = Owner(HOST, pid, _namespace(), boot, "" if found is None else found[1])
    return _current


def is_dead(text: str) -> bool:
    """True only when ``text`` names a process of this host, PID namespace and boot that has ended."""
    owner, me = Owner.parse(text), current()
    if (
        owner is None
        or not me.namespace
        or (owner.host, owner.namespace, owner.boot) != (me.host, me.namespace, me.boot)
    ):
        return False
    found = _start_time(owner.pid)
    if found is None:
        return True
    state, started = found
    # A zombie has died (its parent has not reaped it yet); another start time means the pid was reused.
    return state in {"Z", "X"} or started != owner.started
