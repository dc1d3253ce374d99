"""What the admin hides: values under secret-looking keys, at any depth; nothing else."""

from __future__ import annotations

import html
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from durable_django.admin import display
from durable_django.admin.redaction import REDACTED, fragments, positional_names, redact, redact_call
from durable_django.conf import DEFAULT_ADMIN_REDACT

SECRETS = fragments(DEFAULT_ADMIN_REDACT)


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "new_password2", "access_token", "csrfToken", "Authorization", "client_secret",
     "api_key", "apiKey", "API-Key", "private_key", "card_number", "creditCard", "cvv", "credentials", "cookie"],
)  # fmt: skip
def test_keys_that_look_secret_are_redacted_whatever_their_case_and_separators(key):
    assert redact({key: "s3cret", "user": "ann"}, SECRETS) == {key: REDACTED, "user": "ann"}


def test_redaction_reaches_into_nested_lists_and_dicts_and_leaves_the_original_alone():
    value = {"orders": [{"id": 1, "payment": {"card": {"number": "4111"}, "amount": 5}}], "token": ["a", "b"]}
    assert redact(value, SECRETS) == {
        "orders": [{"id": 1, "payment": {"card": REDACTED, "amount": 5}}],
        "token": REDACTED,
    }
    assert value["orders"][0]["payment"]["card"] == {"number": "4111"}


def test_scalars_and_harmless_keys_pass_through():
    assert redact("password", SECRETS) == "password"
    assert redact([1, None, True], SECRETS) == [1, None, True]
    assert redact({"username": "ann", "tokens_used": 3}, SECRETS) == {"username": "ann", "tokens_used": REDACTED}


def test_positional_arguments_are_redacted_by_their_parameter_name():
    names = positional_names("step", "tests.sign_in")
    assert names == ("user", "password")
    stored = {"args": ["ann", "hunter2"], "kwargs": {"extra": {"token": "t"}}}
    assert redact_call(stored, names, SECRETS) == {"args": ["ann", REDACTED], "kwargs": {"extra": {"token": REDACTED}}}


def test_code_that_is_not_registered_has_no_parameter_names():
    assert positional_names("step", "tests.no_such_step") == ()
    assert positional_names("workflow", "tests.no_such_workflow") == ()


@pytest.mark.parametrize("setting", ["password", ["password", ""], [None], 42])
def test_a_redaction_setting_that_is_not_a_list_of_words_is_refused(setting):
    with pytest.raises(ImproperlyConfigured, match="DURABLE_ADMIN_REDACT"):
        fragments(setting)


def test_redacted_values_are_marked_and_everything_else_is_escaped():
    shown = display.json_block({"password": "x", "note": "<b>hi</b>"}, SECRETS)
    assert '<span class="durable-redacted">&quot;[redacted]&quot;</span>' in shown
    assert "&lt;b&gt;hi&lt;/b&gt;" in shown and "<b>" not in shown


def test_short_values_are_inline_and_long_ones_are_pretty_printed():
    assert display.json_block([1, 2], ()).startswith('<code class="durable-json">')
    long = html.unescape(display.json_block({"items": list(range(40)), "pair": {"a": 1}}, ()))
    assert long.startswith('<pre class="durable-json">{\n  "items": [\n    0, 1, 2, 3,')
    assert '\n  "pair": {"a": 1}\n}</pre>' in long, "short parts stay on one line"


@pytest.mark.parametrize(
    "value",
    [
        {"items": list(range(100)), "nested": [{"a": "x" * 90}, [], {}, [[1, 2], "b" * 79]], "s": "a\\"},
        ["x" * 200, {"k": None}],
        {"é": "ü" * 100, "n": [1.5, True, None, -2]},
    ],
)
def test_pretty_printing_is_still_the_same_json(value):
    shown = html.unescape(display.json_block(value, ()))
    assert json.loads(shown.removeprefix('<pre class="durable-json">').removesuffix("</pre>")) == value


def test_call_arguments_read_like_a_call():
    assert (
        display.call({"args": [1, "a"], "kwargs": {"b": None}}, ())
        == '<code class="durable-json">(1, &quot;a&quot;, b=null)</code>'
    )


@pytest.mark.parametrize(
    "seconds,shown",
    [
        (0.0123, "12 ms"),
        (3.25, "3.2 s"),
        (243, "4 min 3 s"),
        (3 * 3600 + 720, "3 h 12 min"),
        (30 * 86400 + 7200, "30 d 2 h"),
    ],
)
def test_durations_read_in_the_two_largest_units_that_fit(seconds, shown):
    from datetime import timedelta

    assert display.duration(timedelta(seconds=seconds)) == shown
