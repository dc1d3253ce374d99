from __future__ import annotations

import os

import pytest
from django.conf import settings

from durable_django import cache

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config):
    if IN_CI and not settings.POSTGRES:
        raise pytest.UsageError("CI=true needs PostgreSQL on 127.0.0.1:5432; .ci/run starts it")


def pytest_collection_modifyitems(config, items):
    if settings.POSTGRES:
        return
    skip = pytest.mark.skip(reason="PostgreSQL is not reachable on 127.0.0.1:5432")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_generator_cache():
    cache.clear()
    yield
    cache.clear()
