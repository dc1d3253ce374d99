"""Each capability page's example, run as written on the quickstart's project and worker."""

from __future__ import annotations

import pytest

from .conftest import CAPABILITY_PAGES


@pytest.mark.parametrize("page", CAPABILITY_PAGES, ids=[page.stem for page in CAPABILITY_PAGES])
def test_the_page_runs_as_written(docs_project, page):
    before = docs_project.checked_outputs
    docs_project.follow(page)
    assert docs_project.checked_outputs > before, f"{page.name} shows no output of a shell session to check"
    # Pages share one project: a run left waiting would change what the next page's timers do.
    assert not docs_project.live_runs, f"{page.name} leaves runs that have not finished: {docs_project.live_runs}"
    assert docs_project.worker is not None
    assert "Traceback" not in docs_project.worker.logs()
