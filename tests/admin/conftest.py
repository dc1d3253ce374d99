"""Fixtures for the admin's tests: staff users with chosen permissions, runs in chosen states."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from durable_django.store import outbox

ALL_ACTIONS = ("cancel", "retry", "signal", "fork")


@pytest.fixture(autouse=True)
def no_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are worked in the test's process by ``run_until_idle``; nothing goes to a broker."""
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)


@pytest.fixture
def staff(django_user_model: type) -> Callable[..., Client]:
    """A logged-in client for a staff user who may view runs, plus the actions named."""
    made = 0

    def make(*permissions: str) -> Client:
        nonlocal made
        made += 1
        user = django_user_model.objects.create_user(username=f"staff{made}", password="pw", is_staff=True)
        codenames = ["view_workflowrun", *(f"{name}_workflowrun" for name in permissions)]
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="durable_django", codename__in=codenames)
        )
        client = Client()
        client.force_login(user)
        return client

    return make
