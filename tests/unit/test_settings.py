"""Settings are typed, read at every access, and checked at start-up with the setting's name and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from durable_django.checks import check_durable_settings
from durable_django.conf import DEFAULT_ADMIN_REDACT, Settings, settings

#: One value of the wrong type or out of range per setting (a row per setting: none left behind).
BAD: dict[str, Any] = {
    "STEP_TIMEOUT": 0,
    "LEASE_GRACE": -1.0,
    "SWEEP_INTERVAL": "2",
    "REPUBLISH_AFTER": float("nan"),
    "REPUBLISH_AFTER_BUSY": -5,
    "SWEEP_BATCH": 0,
    "FIRE_BATCH": 0,
    "RETENTION": 30,
    "GENERATOR_CACHE_SIZE": 10.5,
    "INLINE_SECONDS": None,
    "UNKNOWN_CODE_GRACE": float("inf"),
    "FAST_PATH": "yes",
    "RECLAIM_DEAD_OWNERS": 1,
    "WORKER_SWEEPER": None,
    "COUNTDOWN_HINT_MAX": True,
    "MAX_PAYLOAD_BYTES": 100,
    "WAIT_LISTEN": "no",
    "CONTINUE_AS_NEW_SUGGESTED_AFTER": 0,
    "ADMIN_REDACT": "password",
}


def test_every_setting_has_a_bad_value_row():
    assert set(BAD) == {setting.name for setting in Settings.all()}


@pytest.mark.parametrize("setting", Settings.all(), ids=lambda setting: setting.name)
def test_every_default_passes_its_own_check(setting):
    assert setting.check(setting.default) is None


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_an_error_naming_the_setting_and_its_default(name):
    with override_settings(**{f"DURABLE_{name}": BAD[name]}):
        problems = [problem for problem in check_durable_settings() if problem.id == "durable_django.E003"]
    assert len(problems) == 1, problems
    default = getattr(Settings, name).default
    assert f"DURABLE_{name}" in problems[0].msg and repr(BAD[name]) in problems[0].msg
    assert repr(default) in (problems[0].hint or "")


def test_good_values_of_the_right_type_pass():
    with override_settings(DURABLE_SWEEP_INTERVAL=1, DURABLE_SWEEP_BATCH=50, DURABLE_ADMIN_REDACT=["iban"]):
        assert not [problem for problem in check_durable_settings() if problem.id == "durable_django.E003"]


def test_a_misspelt_setting_is_a_warning_that_names_the_real_one():
    with override_settings(DURABLE_SWEEP_INTERVALL=3.0):
        warnings = [problem for problem in check_durable_settings() if problem.id == "durable_django.W001"]
    assert len(warnings) == 1
    assert "DURABLE_SWEEP_INTERVALL" in warnings[0].msg and "DURABLE_SWEEP_INTERVAL?" in (warnings[0].hint or "")


def test_settings_are_read_at_every_access_so_override_settings_works():
    assert settings.SWEEP_BATCH == 500
    with override_settings(DURABLE_SWEEP_BATCH=7):
        assert settings.SWEEP_BATCH == 7
    assert settings.SWEEP_BATCH == 500
    assert settings.ADMIN_REDACT == DEFAULT_ADMIN_REDACT
