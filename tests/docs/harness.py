"""Docs pages run as written: their commands, their files and their shell sessions.

A page is the script. Commands in ``sh`` blocks run in a project directory. A ``python``
block whose first line names a file is that file:

- ``# shop/workflows.py`` writes it;
- ``# shop/workflows.py (add at the end)`` appends to it;
- ``# shop/workflows.py (replace onboarding)`` swaps the top-level ``onboarding`` function
  (with its decorators) for the block: a code change to an existing workflow.

``python`` blocks that start with ``# python manage.py shell`` are pasted, line by line,
into one interactive console, one process per session: a file or ``sh`` block ends the
session, as a user would restart ``manage.py shell`` after changing code. Before each
snippet after the first, and at the end of the session, the console waits until the worker
has nothing left to do but timers that are not due (what "a moment later" means on the
pages). A ``text`` block right after a snippet is what that snippet must print. A
worker whose code changed is restarted before the next shell session, as a deploy would.
Any other ``python`` block is an illustration: it must compile, nothing more. Needs no
server: SQLite and kombu's filesystem transport.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import ROOT, CeleryWorker

DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FILE_HEADER = re.compile(r"# (?P<path>[\w/]+\.py)(?: \((?P<mode>add at the end|replace (?P<name>\w+))\))?")
SHELL_HEADER = "# python manage.py shell"
# How long "a moment later" may be: well under DURABLE_REPUBLISH_AFTER (15 s), so a run
# that only goes on because the sweeper resent a lost message fails the test.
WAIT = 8
# Settings of the test session that must not leak into the docs project's processes.
LEAKS = re.compile(r"DJANGO_SETTINGS_MODULE|DATABASE_URL|TEST_.*|CELERY_.*|DURABLE_.*|PYTHONPATH")

# Run with `manage.py shell -c`: feeds each snippet to a console as a terminal paste would,
# waits (bounded) for the worker between snippets, and reports what went wrong.
CONSOLE = """
import code, io, json, time
from contextlib import redirect_stdout
from durable_django.store.clock import Now
from durable_django.models import Schedule, WorkflowRun, WorkItem

def busy():
    # Work a worker should be doing now: a due schedule tick, or anything but a timer that is not due yet.
    # Schedules first: a tick fired between the two reads shows as its runs' work items in the second.
    if Schedule.objects.due().exists():
        return True
    return WorkItem.objects.exclude(kind=WorkItem.Kind.TIMER, available_at__gt=Now()).exists()

def settle():
    deadline = time.monotonic() + {wait}
    while busy():
        if time.monotonic() > deadline:
            errors.append("the worker was still busy after {wait} s")
            return
        time.sleep(0.05)

snippets = json.loads(open({path!r}).read())
console = code.InteractiveConsole()
errors = []
console.write = errors.append
outputs = []
for index, snippet in enumerate(snippets):
    if index:
        settle()
    out = io.StringIO()
    with redirect_stdout(out):
        for line in snippet.splitlines():
            console.push(line)
        console.push("")
    outputs.append(out.getvalue())
settle()
live = list(WorkflowRun.objects.exclude(status__in=WorkflowRun.FINISHED).values_list("workflow_id", flat=True))
print(json.dumps({{"outputs": outputs, "errors": errors, "live": live}}))
"""


@dataclass
class Block:
    lang: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]

    @property
    def is_shell(self) -> bool:
        return self.lang == "python" and self.first_line.startswith(SHELL_HEADER)

    @property
    def file_header(self) -> re.Match[str] | None:
        return FILE_HEADER.fullmatch(self.first_line) if self.lang == "python" else None


def blocks(page: Path) -> list[Block]:
    return [Block(lang, text) for lang, text in FENCE.findall(page.read_text())]


class Project:
    """Follows pages in one directory with one worker, as a new user in a terminal would."""

    def __init__(self, directory: Path) -> None:
        self.project = directory / "project"
        self.project.mkdir()
        self.logs = directory / "logs"
        self.sessions = 0
        self.env = {key: value for key, value in os.environ.items() if not LEAKS.fullmatch(key)}
        self.worker: CeleryWorker | None = None
        self.code_changed = False
        self.done: set[tuple[str, int]] = set()  # (page, block index) already applied
        #: Pages whose ``(add at the end)`` blocks go in just before the first worker starts.
        self.pages_to_add: list[Path] = []
        self.ran: list[str] = []
        self.checked_outputs = 0
        #: Runs not finished when the last shell session ended.
        self.live_runs: list[str] = []
        self._snippets: list[str] = []
        self._expected: dict[int, str] = {}

    # Commands.
    def run(self, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            command, cwd=self.project, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{shlex.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def command(self, page: Path, line: str) -> None:
        words = shlex.split(line, comments=True)
        if not words:
            return
        self.ran.append(shlex.join(words))
        if len(words) > 2 and words[-2] == ">":  # `python manage.py ... > file`
            assert words[:2] == ["python", "manage.py"], f"{page.name}: only manage.py output is redirected: {line!r}"
            output = self.run(sys.executable, "manage.py", *words[2:-2]).stdout
            (self.project / words[-1]).write_text(output)
            return
        match words:
            case ["python", "-m", "venv", _] | ["source", _]:
                pass  # this test runs in the suite's virtualenv
            case ["pip", "install", "-e", _]:
                pass  # the suite's virtualenv has durable_django installed in editable mode
            case ["pip", "install", *packages]:
                for package in packages:  # the suite's virtualenv has them: its test extra lists them
                    importlib.metadata.version(package)
            case ["django-admin", *arguments]:
                self.run(sys.executable, "-m", "django", *arguments)
            case ["python", "manage.py", "shell"]:
                pass  # the python blocks that follow are the session
            case ["python", "manage.py", "createsuperuser"]:
                password = {"DJANGO_SUPERUSER_PASSWORD": "quickstart"}
                self.run(sys.executable, "manage.py", "createsuperuser", "--noinput", "--username=admin",
                         "--email=admin@example.com", env=password)  # fmt: skip
            case ["python", "manage.py", "runserver"]:
                pass  # the admin is checked with Django's test client instead: no port to bind
            case ["python", "manage.py", *arguments]:
                self.run(sys.executable, "manage.py", *arguments)
            case ["pytest", *arguments]:
                self.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments)
            case ["mkdir", "-p", folder]:
                (self.project / folder).mkdir(parents=True, exist_ok=True)
            case ["celery", "-A", app, "worker", "--loglevel=INFO"]:
                assert self.worker is None, f"{page.name} starts a second worker"
                for other in self.pages_to_add:
                    self.add_code_of(other)
                self.worker = CeleryWorker(app, self.env, self.logs, cwd=self.project, inherit_env=False)
                self.worker.start()
                self.code_changed = False
            case _:
                pytest.fail(f"{page.name} has a command this test does not know how to run: {line!r}")

    # Files.
    def write_file(self, page: Path, block: Block) -> None:
        header = block.file_header
        assert header is not None
        path = self.project / header["path"]
        assert path.parent.is_dir(), f"{page.name}: {header['path']}: the pages never created {path.parent.name}/"
        mode = header["mode"]
        if mode is None:
            path.write_text(block.text)
        elif mode == "add at the end":
            assert path.exists(), f"{page.name}: {header['path']} should exist before the page adds to it"
            path.write_text(path.read_text() + "\n\n" + block.text)
        else:
            path.write_text(replace_definition(path.read_text(), header["name"], block.text, page.name))
        assert_unique_top_level_names(path, page.name)
        self.code_changed = True

    # Shell sessions.
    def run_shell_session(self, page: Path) -> None:
        if not self._snippets:
            return
        assert self.worker is not None, f"{page.name} uses the shell before a worker runs"
        self.deploy()
        self.sessions += 1
        snippets = self.project.parent / f"snippets-{self.sessions}.json"
        snippets.write_text(json.dumps(self._snippets))
        session = self.run(sys.executable, "manage.py", "shell", "-c", CONSOLE.format(path=str(snippets), wait=WAIT))
        report = json.loads(session.stdout.strip().splitlines()[-1])
        where = f"{page.name}, shell session {self.sessions}"
        assert not report["errors"], f"{where}:\n" + "".join(report["errors"]) + "\n" + self.worker.logs()[-5000:]
        # A run the sweeper rescued would also go on, 15 s late: the page must not need it.
        assert "could not publish" not in session.stderr, session.stderr
        for index, expected in self._expected.items():
            printed = report["outputs"][index]
            assert printed == expected, (
                f"{where}: snippet {index + 1} printed\n{printed}\ninstead of\n{expected}\n"
                f"the shell's stderr:\n{session.stderr[-3000:]}\nthe worker's log:\n{self.worker.logs()[-5000:]}"
            )
            self.checked_outputs += 1
        self._snippets, self._expected = [], {}
        self.live_runs = report["live"]

    def deploy(self) -> None:
        """Restart the worker if the code changed since it started.

        Every shell session ends with the worker idle (see ``settle()``), so a SIGKILL loses
        nothing here; a warm shutdown would cost about 5 s with the filesystem transport.
        """
        if self.worker is not None and self.code_changed:
            self.worker.kill()
            self.worker.start()
            self.code_changed = False

    # Pages.
    def add_code_of(self, page: Path) -> None:
        """Apply a page's ``(add at the end)`` blocks now, so one worker start serves every page."""
        for index, block in enumerate(blocks(page)):
            header = block.file_header
            if header is not None and header["mode"] == "add at the end":
                self.write_file(page, block)
                self.done.add((page.name, index))

    def follow(self, page: Path) -> None:
        previous: Block | None = None
        for index, block in enumerate(blocks(page)):
            if (page.name, index) in self.done:
                pass
            elif block.lang == "sh":
                self.run_shell_session(page)
                for line in block.text.splitlines():
                    self.command(page, line)
            elif block.is_shell:
                self._snippets.append(block.text)
            elif block.file_header is not None:
                self.run_shell_session(page)
                # The running worker's code is stale from here on: stop it now, not at the next
                # session. Left running, its first sweep could sync the code schedules it lacks
                # after a command wrote them, marking them gone; the next worker's sync then counts
                # their ticks again from now, undoing an advance_time() run in between (the
                # schedules page printed [] about once in 35 runs under load).
                if self.worker is not None:
                    self.worker.kill()
                self.write_file(page, block)
            elif block.lang == "python":
                compile(block.text, f"{page.name} (illustration)", "exec")
            elif block.lang == "text":
                if previous is not None and previous.is_shell:
                    self._expected[len(self._snippets) - 1] = block.text
            else:
                pytest.fail(f"{page.name} has a {block.lang or 'plain'} code block this test cannot check")
            previous = block
        self.run_shell_session(page)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.kill()


def replace_definition(source: str, name: str, replacement: str, page: str) -> str:
    """``source`` with its top-level definition ``name`` (decorators included) replaced."""
    tree = ast.parse(source)
    found = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name]
    assert len(found) == 1, f"{page}: expected one top-level {name!r} to replace, found {len(found)}"
    node = found[0]
    start = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)]) - 1
    lines = source.splitlines()
    return "\n".join([*lines[:start], replacement.rstrip("\n"), *lines[node.end_lineno :]]) + "\n"


def assert_unique_top_level_names(path: Path, page: str) -> None:
    """Two pages defining one name would silently replace a step or workflow: refuse it."""
    seen: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            assert node.name not in seen, f"{page}: {path.name} defines {node.name!r} twice"
            seen.add(node.name)


#: Django's own report of a task that failed, which a page makes fail on purpose (tasks.md):
#: its logger "django.tasks" logs the task's exception with its traceback.
FAILED_TASK = re.compile(r"state=FAILED\nTraceback \(most recent call last\):\n(?:[ \t].*\n)*\S.*\n")


def unexpected(logs: str) -> str:
    return FAILED_TASK.sub("state=FAILED\n", logs)
