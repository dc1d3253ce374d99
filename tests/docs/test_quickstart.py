"""docs/quickstart.md, run as written: its commands, its files and its shell session.

The ``docs_project`` fixture follows the page (see ``harness.py`` for how blocks are read);
a command the harness does not know fails it, so the page and the test cannot drift apart.
"""

from __future__ import annotations

import sys

from .harness import unexpected

ADMIN_CHECK = """
from django.test import Client
from durable_django.models import WorkflowRun

client = Client(HTTP_HOST="127.0.0.1")
assert client.login(username="admin", password="quickstart")
run = WorkflowRun.objects.get(workflow_id="order-1")
# Searched for: other pages of the docs share this project, and their runs fill the first page.
listing = client.get("/admin/durable_django/workflowrun/", {"q": run.workflow_id})
detail = client.get(f"/admin/durable_django/workflowrun/{run.pk}/change/")
print(listing.status_code, run.workflow_id in listing.text)
if run.workflow_id not in listing.text:
    open("/tmp/listing-debug.html", "w").write(listing.text)
print(detail.status_code, "shop.workflows.mark_paid" in detail.text)
"""


def test_the_quickstart_runs_as_written_and_its_run_completes(docs_project):
    assert "python manage.py migrate" in docs_project.ran
    assert docs_project.checked_outputs, "the page shows no output of its shell session to check"
    assert docs_project.worker is not None, "the page never starts a worker"
    assert "Traceback" not in unexpected(docs_project.worker.logs())
    admin = docs_project.run(sys.executable, "manage.py", "shell", "-c", ADMIN_CHECK).stdout
    assert admin.strip().splitlines()[-2:] == ["200 True", "200 True"], "the admin pages named by the page do not work"
