"""docs/quickstart.md, run as written: its commands, its files and its shell session.

The page is the script. Commands in ``sh`` blocks run in a fresh project directory; a
``python`` block that starts with ``# <path>.py`` is that file (or its end, with
``(add at the end)``); ``python`` blocks that start with ``# python manage.py shell`` are
pasted, line by line, into one interactive console, and the ``text`` block after one is
the output it must print. A command this test does not know fails it, so the page and the
test cannot drift apart. Needs no server: SQLite and kombu's filesystem transport.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from example_project.processes import ROOT, CeleryWorker

QUICKSTART = ROOT / "docs" / "quickstart.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FILE_HEADER = re.compile(r"# (?P<path>[\w/]+\.py)(?P<append> \(add at the end\))?")
SHELL_HEADER = "# python manage.py shell"
# How long "a moment later" may be: well under DURABLE_REPUBLISH_AFTER (15 s), so a run
# that only starts because the sweeper resent a lost message fails the test.
WAIT = 8
# Settings of the test session that must not leak into the quickstart project's processes.
LEAKS = re.compile(r"DJANGO_SETTINGS_MODULE|DATABASE_URL|TEST_.*|CELERY_.*|DURABLE_.*|PYTHONPATH")

# Pasted into `manage.py shell -c`: feeds each snippet to a console as a terminal paste
# would, waits (bounded) for the worker between snippets, and reports what went wrong.
CONSOLE = """
import code, io, json, time
from contextlib import redirect_stdout
from durable_django.models import WorkflowRun

snippets = json.loads(open({path!r}).read())
console = code.InteractiveConsole()
errors = []
console.write = errors.append
outputs = []
for index, snippet in enumerate(snippets):
    if index:
        deadline = time.monotonic() + {wait}
        while WorkflowRun.objects.exclude(status__in=WorkflowRun.FINISHED).exists():
            if time.monotonic() > deadline:
                errors.append("runs not finished after {wait} s")
                break
            time.sleep(0.1)
    out = io.StringIO()
    with redirect_stdout(out):
        for line in snippet.splitlines():
            console.push(line)
        console.push("")
    outputs.append(out.getvalue())
print(json.dumps({{"outputs": outputs, "errors": errors}}))
"""


@dataclass
class Block:
    lang: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


def blocks() -> list[Block]:
    return [Block(lang, text) for lang, text in FENCE.findall(QUICKSTART.read_text())]


class Quickstart:
    """Follows the page in a temporary directory, as a new user in a terminal would."""

    def __init__(self, tmp_path: Path) -> None:
        self.project = tmp_path / "project"
        self.project.mkdir()
        self.logs = tmp_path / "logs"
        self.env = {key: value for key, value in os.environ.items() if not LEAKS.fullmatch(key)}
        self.worker: CeleryWorker | None = None
        self.shell_snippets: list[str] = []
        self.expected_outputs: dict[int, str] = {}
        self.ran: list[str] = []

    def run(self, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            command, cwd=self.project, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{shlex.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def command(self, line: str) -> None:
        words = shlex.split(line, comments=True)
        if not words:
            return
        self.ran.append(shlex.join(words))
        match words:
            case ["python", "-m", "venv", _] | ["source", _]:
                pass  # this test runs in the suite's virtualenv
            case ["pip", "install", "-e", _]:
                pass  # the suite's virtualenv has durable_django installed in editable mode
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
            case ["celery", "-A", app, "worker", "--loglevel=INFO"]:
                self.worker = CeleryWorker(app, self.env, self.logs, cwd=self.project, inherit_env=False)
                self.worker.start()
            case _:
                pytest.fail(f"docs/quickstart.md has a command this test does not know how to run: {line!r}")

    def python_block(self, block: Block) -> None:
        if block.first_line.startswith(SHELL_HEADER):
            self.shell_snippets.append(block.text)
            return
        header = FILE_HEADER.fullmatch(block.first_line)
        assert header, f"a python block in docs/quickstart.md names neither a file nor the shell: {block.first_line!r}"
        path = self.project / header["path"]
        assert path.parent.is_dir(), f"{header['path']}: the page never created {path.parent.name}/"
        if header["append"]:
            assert path.exists(), f"{header['path']} should exist before the page adds to it"
            path.write_text(path.read_text() + "\n" + block.text)
        else:
            path.write_text(block.text)

    def run_shell_session(self) -> None:
        if not self.shell_snippets:
            return
        assert self.worker is not None, "the page starts a run before it starts a worker"
        snippets = self.project.parent / "snippets.json"
        snippets.write_text(json.dumps(self.shell_snippets))
        session = self.run(sys.executable, "manage.py", "shell", "-c", CONSOLE.format(path=str(snippets), wait=WAIT))
        report = json.loads(session.stdout.strip().splitlines()[-1])
        assert not report["errors"], "".join(report["errors"]) + "\n" + session.stderr + "\n" + self.worker.logs()
        # A run the sweeper rescued would also complete, 15 s late: the page must not need it.
        assert "could not publish" not in session.stderr, session.stderr
        for index, expected in self.expected_outputs.items():
            assert report["outputs"][index] == expected, f"shell snippet {index + 1} printed something else"
        self.shell_snippets = []

    def follow(self) -> None:
        for block in blocks():
            if block.lang == "sh":
                self.run_shell_session()
                for line in block.text.splitlines():
                    self.command(line)
            elif block.lang == "python":
                self.python_block(block)
            elif block.lang == "text":
                assert self.shell_snippets, "a text block in docs/quickstart.md follows no shell snippet"
                self.expected_outputs[len(self.shell_snippets) - 1] = block.text
            else:
                pytest.fail(f"docs/quickstart.md has a {block.lang or 'plain'} code block this test cannot check")
        self.run_shell_session()


ADMIN_CHECK = """
from django.test import Client
from durable_django.models import WorkflowRun

client = Client(HTTP_HOST="127.0.0.1")
assert client.login(username="admin", password="quickstart")
run = WorkflowRun.objects.get()
listing = client.get("/admin/durable_django/workflowrun/")
detail = client.get(f"/admin/durable_django/workflowrun/{run.pk}/change/")
print(listing.status_code, run.workflow_id in listing.text)
print(detail.status_code, "shop.workflows.mark_paid" in detail.text)
"""


def test_the_quickstart_runs_as_written_and_its_run_completes(tmp_path):
    quickstart = Quickstart(tmp_path)
    try:
        quickstart.follow()
        assert quickstart.worker is not None, "the page never starts a worker"
        logs = quickstart.worker.logs()
    finally:
        if quickstart.worker is not None:
            quickstart.worker.kill()

    assert "python manage.py migrate" in quickstart.ran
    assert quickstart.expected_outputs, "the page shows no output of its shell session to check"
    assert "Traceback" not in logs, logs
    admin = quickstart.run(sys.executable, "manage.py", "shell", "-c", ADMIN_CHECK).stdout
    assert admin.strip().splitlines()[-2:] == ["200 True", "200 True"], "the admin pages named by the page do not work"
