"""The services the harness owns: a PostgreSQL cluster, a Redis server, the fake payment API.

Each runs as a plain process on a free 127.0.0.1 port, started, restarted and stopped by
this module through the process ids it started (``pg_ctl`` for PostgreSQL), never by name.
PostgreSQL refuses to run as root: when the harness is root, its commands run as the
``postgres`` OS user (``runuser``) on a data directory that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tests.support.processes import alive

if TYPE_CHECKING:
    import redis

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str) -> T:
    """Return ``check()`` once truthy; raise after ``timeout`` seconds (bounded polling)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _kill(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """Signal a process (its whole session) that this harness started, and reap it."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (``CHAOS_PG_BIN`` overrides)."""
    configured = os.environ.get("CHAOS_PG_BIN")
    if configured:
        return Path(configured)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    if which:
        return Path(which).parent
    raise RuntimeError("pg_ctl not found: install PostgreSQL (apt-get install postgresql) or set CHAOS_PG_BIN")


class Postgres:
    """A PostgreSQL cluster of its own in a temporary directory, on ``port``."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.log_dir = log_dir
        self.bindir = postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="durable-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_root = os.geteuid() == 0
        self.started = False
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    def _run(self, *command: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        result = subprocess.run(
            [*prefix, *command],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,  # a Ctrl-C at the terminal reaches the harness, which stops PostgreSQL itself
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "100",
            "fsync": "on",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] %a '",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# durable_django chaos harness\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self.started = True

    def restart(self, mode: str = "immediate") -> float:
        """Restart (``immediate``: as after a crash, with recovery); returns the seconds it took."""
        began = time.monotonic()
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "60",
            "restart",
        )  # fmt: skip
        return time.monotonic() - began

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def stop(self) -> None:
        if not self.started:
            return
        pid = self.postmaster_pid()
        for mode in ("fast", "immediate"):
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                continue
        else:  # pg_ctl could not stop it: end the postmaster we started, by its pid
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def cleanup(self) -> None:
        """Keep the server log with the run's artifacts; remove the data directory."""
        with contextlib.suppress(OSError):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log, self.log_dir / "postgres.log")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


class Redis:
    """A Redis server with no persistence at all: a restart loses every message it held."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.log_dir = log_dir
        self.root = Path(tempfile.mkdtemp(prefix="durable-chaos-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.root), "--daemonize", "no",
        ]  # fmt: skip
        with open(self.log_dir / f"redis-{self.starts}.log", "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        wait_until(self.ping, timeout=20, what=f"redis on port {self.port}")

    def client(self) -> redis.Redis:  # a fresh client each time: the server may have been restarted
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def ping(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def crash(self) -> None:
        """SIGKILL the server: without persistence everything it held is gone."""
        _kill(self.process)
        self.process = None

    def stop(self) -> None:
        _kill(self.process, signal.SIGTERM)
        self.process = None

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def queued(self) -> tuple[int, int]:
        """(messages waiting in the broker's queues, messages delivered but not yet acknowledged)."""
        with self.client() as client:
            queued = 0
            for key in client.scan_iter(match="celery*", count=100):
                if client.type(key) == b"list":
                    queued += int(client.llen(key))
            return queued, int(client.hlen("unacked"))

    def flush(self) -> None:
        """FLUSHALL: every queued message, and the queue bindings, vanish."""
        with self.client() as client:
            client.flushall()

    def version(self) -> str:
        with self.client() as client:
            return f"redis {client.info('server').get('redis_version')}"


class RabbitMQ:
    """A vhost of its own on the machine's RabbitMQ (127.0.0.1:5672, guest/guest; CI starts the server).

    The server is shared, so it is never restarted: a "crash" deletes the vhost, which closes
    every connection to it and drops its queues with all the messages they held (as a Redis
    without persistence loses them), and "start" creates it again, empty.
    """

    def __init__(self, vhost: str, log_dir: Path) -> None:
        self.vhost = vhost
        self.log_dir = log_dir
        self.starts = 0

    def _ctl(self, *arguments: str) -> str:
        result = subprocess.run(
            ["rabbitmqctl", "-q", *arguments], capture_output=True, text=True, timeout=60, check=False
        )
        with open(self.log_dir / "rabbitmqctl.log", "a") as log:
            log.write(f"$ rabbitmqctl {' '.join(arguments)}\n{result.stdout}{result.stderr}")
        if result.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(arguments)} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._ctl("add_vhost", self.vhost)
        self._ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def crash(self) -> None:
        self._ctl("delete_vhost", self.vhost)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.crash()

    def cleanup(self) -> None:
        pass

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"

    def _queues(self) -> list[tuple[str, int, int]]:
        rows = self._ctl("list_queues", "-p", self.vhost, "name", "messages_ready", "messages_unacknowledged")
        found = []
        for line in rows.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1].isdigit():
                found.append((parts[0], int(parts[1]), int(parts[2])))
        return found

    def queued(self) -> tuple[int, int]:
        queues = [queue for queue in self._queues() if not queue[0].startswith("celery@")]  # not pidbox replies
        return sum(ready for _, ready, _ in queues), sum(unacked for _, _, unacked in queues)

    def flush(self) -> None:
        """Purge every queue: the queued messages vanish; connections and bindings stay."""
        for name, _, _ in self._queues():
            self._ctl("purge_queue", "-p", self.vhost, name)

    def version(self) -> str:
        return f"rabbitmq {self._ctl('version').strip()}"


class FakeApi:
    """The fake payment and email API (``chaos.fakeapi``) as its own process."""

    def __init__(self, port: int, ledger: Path, log_dir: Path, options: dict[str, float], seed: int) -> None:
        self.port = port
        self.ledger = ledger
        self.log_dir = log_dir
        self.options = options
        self.seed = seed
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "chaos.fakeapi", "--port", str(self.port), "--ledger", str(self.ledger),
            "--seed", str(self.seed),
        ]  # fmt: skip
        for key, value in self.options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        with open(self.log_dir / "fakeapi.log", "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(self.healthy, timeout=20, what=f"the fake API on port {self.port}")

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
            return bool(json.load(response).get("ok"))

    def stop(self) -> None:
        _kill(self.process, signal.SIGTERM)
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
