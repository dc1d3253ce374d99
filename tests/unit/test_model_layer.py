"""The model layer speaks the core's language: one set of request kinds."""

from __future__ import annotations

from durable_django.core.requests import Kind
from durable_django.models import HistoryEntry


def test_history_entry_kinds_are_the_core_request_kinds():
    assert {kind.value for kind in Kind} == set(HistoryEntry.Kind.values)


def test_every_request_kind_has_a_readable_label():
    assert all(str(label) for label in HistoryEntry.Kind.labels)
