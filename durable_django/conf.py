"""Settings, read lazily under the ``DURABLE_`` prefix; each has a type, a default and a valid range.

``settings.SWEEP_INTERVAL`` reads ``django.conf.settings.DURABLE_SWEEP_INTERVAL`` at every
access (so ``override_settings`` works in tests) and falls back to the default. Values out of
range are reported by the system check ``durable_django.E003`` when Django starts, naming the
setting and the fix, rather than failing later in a worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast, overload

from django.conf import settings as django_settings

__all__ = ["DEFAULT_ADMIN_REDACT", "PREFIX", "Setting", "settings"]

PREFIX = "DURABLE_"
T = TypeVar("T")
#: Says what is wrong with a configured value, or None if it is fine.
Check = Callable[[Any], str | None]

#: Key fragments the admin redacts unless ``DURABLE_ADMIN_REDACT`` says otherwise.
DEFAULT_ADMIN_REDACT = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "apikey",
    "privatekey",
    "credential",
    "card",
    "cvv",
    "cookie",
)


def _number(minimum: float, *, inclusive: bool) -> Check:
    bound = f"{'at least' if inclusive else 'greater than'} {minimum:g}"

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"must be a finite number {bound} (seconds)"
        if value < minimum or (value == minimum and not inclusive):
            return f"must be {bound} (seconds)"
        return None

    return check


def _integer(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"must be an int of at least {minimum}"
        return None

    return check


def _retention(value: Any) -> str | None:
    if value is None or (isinstance(value, timedelta) and value > timedelta(0)):
        return None
    return "must be None (keep finished runs) or a positive timedelta, such as timedelta(days=30)"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


def _fragments(value: Any) -> str | None:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) and item.strip() for item in value):
        return "must be a list or tuple of non-empty str"
    return None


class Setting(Generic[T]):
    """One ``DURABLE_*`` setting: its default, what values are valid, and what it does."""

    def __init__(self, default: T, check: Check, doc: str) -> None:
        self.default = default
        self.check = check
        self.doc = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def setting_name(self) -> str:
        return PREFIX + self.name

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> Setting[T] | T:
        if instance is None:
            return self
        return cast(T, getattr(django_settings, self.setting_name, self.default))

    def problem(self) -> str | None:
        """What is wrong with the configured value, or None (also when it is not configured)."""
        if not hasattr(django_settings, self.setting_name):
            return None
        return self.check(getattr(django_settings, self.setting_name))


class Settings:
    """durable_django's settings; every attribute reads ``DURABLE_<NAME>`` or its default."""

    STEP_TIMEOUT = Setting(300.0, _number(0, inclusive=False), "Per-attempt timeout of a step that sets none.")
    LEASE_GRACE = Setting(
        10.0, _number(0, inclusive=True), "A claimed item is presumed abandoned this long after its step's timeout."
    )
    SWEEP_INTERVAL = Setting(
        2.0,
        _number(0, inclusive=False),
        "How often every worker looks for lost messages, expired leases and due retries.",
    )
    REPUBLISH_AFTER = Setting(
        15.0,
        _number(0, inclusive=True),
        "A claimable item whose wake-up message is older than this is published again, if its queue is empty.",
    )
    REPUBLISH_AFTER_BUSY = Setting(300.0, _number(0, inclusive=True), "...and after this long, even if it is busy.")
    SWEEP_BATCH = Setting(500, _integer(1), "How many items one sweep publishes at most.")
    FIRE_BATCH = Setting(
        50, _integer(1), "Due timers one wake-up message hands to a worker at most, fired in one transaction."
    )
    GENERATOR_CACHE_SIZE = Setting(2000, _integer(0), "Live generators each worker process keeps to skip replay.")
    INLINE_SECONDS = Setting(
        30.0,
        _number(0, inclusive=True),
        "A worker continues one run inline for at most this many seconds before handing off.",
    )
    UNKNOWN_CODE_GRACE = Setting(
        600.0, _number(0, inclusive=True), "A step that no worker could run (its code is missing) this long blocks."
    )
    FAST_PATH = Setting(
        True, _boolean, "On PostgreSQL, record a step and lease the next in one statement when nothing else happens."
    )
    RECLAIM_DEAD_OWNERS = Setting(
        True, _boolean, "Each sweeper ends at once the leases of its own host's dead processes (Linux /proc)."
    )
    WORKER_SWEEPER = Setting(True, _boolean, "Start the recovery sweeper inside every Celery worker.")
    COUNTDOWN_HINT_MAX = Setting(
        5.0, _number(0, inclusive=True), "Timer and retry waits up to this many seconds also travel as a countdown."
    )
    MAX_PAYLOAD_BYTES = Setting(
        2_097_152,
        _integer(1024),
        "The most bytes one stored value (arguments, a result, a signal's payload, a state) takes as JSON.",
    )
    WAIT_LISTEN = Setting(
        True,
        _boolean,
        "On PostgreSQL, run.wait() and await_result() LISTEN for the run's end; False polls (for a pooler).",
    )
    CONTINUE_AS_NEW_SUGGESTED_AFTER = Setting(
        10_000,
        _integer(1),
        "durable.workflow_info().continue_as_new_suggested turns true once a run's history holds this many entries.",
    )
    RETENTION: Setting[timedelta | None] = Setting(
        None,
        _retention,
        "Finished top-level runs are deleted this long after they finished, by the workers' sweepers; None keeps them.",
    )
    ADMIN_REDACT: Setting[tuple[str, ...]] = Setting(
        DEFAULT_ADMIN_REDACT, _fragments, "The admin hides values under keys containing one of these fragments."
    )

    @classmethod
    def all(cls) -> list[Setting[Any]]:
        """Every setting, in the order they are declared."""
        return [value for value in vars(cls).values() if isinstance(value, Setting)]


settings = Settings()
