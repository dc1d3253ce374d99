"""The pages that are not run still match the code: names, settings, statuses, cited tests, links."""

from __future__ import annotations

import re

import pytest

import durable_django
from durable_django.conf import Settings
from durable_django.models import WorkflowRun

from .harness import DOCS, ROOT

PAGES = sorted(DOCS.glob("*.md"))
LINK = re.compile(r"\]\((?!https?://)(?P<path>[^)#]*)(?:#(?P<anchor>[^)]*))?\)")
CITED_TEST = re.compile(r"`(test_\w+)`")


def text(name: str) -> str:
    return (DOCS / name).read_text()


@pytest.mark.parametrize("name", durable_django.__all__)
def test_every_public_name_is_in_the_reference(name):
    assert re.search(rf"`(durable\.)?{name}\b", text("reference.md")), f"docs/reference.md never names {name}"


@pytest.mark.parametrize("setting", [setting.name for setting in Settings.all()])
def test_every_setting_is_in_the_reference_with_its_default(setting):
    default = getattr(Settings, setting).default
    row = re.search(rf"^\| `DURABLE_{setting}` \| `(?P<default>[^`]*)` \|", text("reference.md"), re.MULTILINE)
    assert row, f"docs/reference.md has no settings row for DURABLE_{setting}"
    assert row["default"] == repr(default), f"DURABLE_{setting} defaults to {default!r}, not {row['default']}"


@pytest.mark.parametrize("status", WorkflowRun.Status.values)
def test_every_status_says_when_it_is_set(status):
    assert re.search(rf"^\| `{status}` \| \S", text("concepts.md"), re.MULTILINE), f"concepts.md: {status}?"


def test_every_test_a_page_cites_exists():
    defined = {
        match
        for path in (ROOT / "tests").rglob("test_*.py")
        for match in re.findall(r"^\s*def (test_\w+)\(", path.read_text(), re.MULTILINE)
    }
    cited = {(page.name, name) for page in PAGES for name in CITED_TEST.findall(page.read_text())}
    assert cited, "no page cites a test"
    missing = sorted(f"{page}: {name}" for page, name in cited if name not in defined)
    assert not missing, "pages cite tests that do not exist:\n" + "\n".join(missing)


def anchors(page: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", text(page), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_links_between_pages_resolve(page):
    for link in LINK.finditer(page.read_text()):
        target = link["path"] or page.name
        assert (DOCS / target).is_file(), f"{page.name} links to {target}, which does not exist"
        if link["anchor"]:
            assert link["anchor"] in anchors(target), f"{page.name} links to {target}#{link['anchor']}: no such heading"


def test_the_readme_and_concepts_link_every_page():
    readme = (ROOT / "README.md").read_text()
    concepts = text("concepts.md")
    for page in PAGES:
        assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"
        if page.name not in {"concepts.md", "quickstart.md", "reference.md", "operations.md"}:
            assert f"({page.name})" in concepts, f"concepts.md does not link {page.name}"


DURABLE_NAME = re.compile(r"\bdurable\.([A-Za-z_]\w*)")
DENIED = re.compile(r"[Tt]here is no `durable\.(\w+)")


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=[*(page.name for page in PAGES), "README.md"])
def test_every_durable_name_a_page_uses_exists_and_none_is_said_to_be_missing(page):
    content = page.read_text()
    unknown = sorted({name for name in DURABLE_NAME.findall(content) if not hasattr(durable_django, name)})
    assert not unknown, f"{page.name} names durable.{', durable.'.join(unknown)}, which do not exist"
    denied = sorted({name for name in DENIED.findall(content) if hasattr(durable_django, name)})
    assert not denied, f"{page.name} says durable.{', durable.'.join(denied)} does not exist, but it does"


@pytest.mark.parametrize("page", [*PAGES, ROOT / "README.md"], ids=[*(page.name for page in PAGES), "README.md"])
def test_no_page_sends_readers_to_a_private_function(page):
    # The replay check of an export is public as durable_django.testing.assert_replays.
    assert "check_export" not in page.read_text(), f"{page.name} names the private replay.check_export"
