"""Each capability page's example, run as written on the quickstart's project and worker."""

from __future__ import annotations

import pytest

from .conftest import CAPABILITY_PAGES
from .harness import unexpected


@pytest.mark.parametrize("page", CAPABILITY_PAGES, ids=[page.stem for page in CAPABILITY_PAGES])
def test_the_page_runs_as_written(docs_project, page):
    before = docs_project.checked_outputs
    docs_project.follow(page)
    assert docs_project.checked_outputs > before, f"{page.name} shows no output of a shell session to check"
    # Pages share one project: a run left waiting would change what the next page's timers do.
    assert not docs_project.live_runs, f"{page.name} leaves runs that have not finished: {docs_project.live_runs}"
    assert docs_project.worker is not None
    assert "Traceback" not in unexpected(docs_project.worker.logs())


def test_a_failed_tasks_report_is_expected_but_nothing_else_is():
    report = "x state=FAILED\nTraceback (most recent call last):\n  File 'a.py'\n    raise E\nE: boom\nnext\n"
    assert "Traceback" not in unexpected(report)
    assert "Traceback" in unexpected(report.replace("state=FAILED", "state=RUNNING"))
