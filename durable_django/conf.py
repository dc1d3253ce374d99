"""Settings, read lazily under the ``DURABLE_`` prefix; all have working defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings

__all__ = ["DEFAULT_ADMIN_REDACT", "settings"]

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


@dataclass(frozen=True)
class _Defaults:
    #: Per-attempt timeout of a step that sets none, in seconds.
    STEP_TIMEOUT: float = 300.0
    #: A claimed item is presumed abandoned this long after its step's timeout.
    LEASE_GRACE: float = 10.0
    #: How often every worker looks for lost messages, expired leases and due retries.
    SWEEP_INTERVAL: float = 2.0
    #: A claimable item whose wake-up message is older than this is published again,
    #: if its queue is empty in the broker (a busy queue probably still holds the message).
    REPUBLISH_AFTER: float = 15.0
    #: ...and after this long, even if its queue is busy.
    REPUBLISH_AFTER_BUSY: float = 300.0
    #: How many items one sweep republishes at most.
    SWEEP_BATCH: int = 500
    #: Live generators each worker process keeps to skip replay.
    GENERATOR_CACHE_SIZE: int = 2000
    #: A worker continues one run inline for at most this many seconds before handing off.
    INLINE_SECONDS: float = 30.0
    #: A step that no worker could run (its code is missing) this long blocks its run.
    UNKNOWN_CODE_GRACE: float = 600.0
    #: On PostgreSQL, record a step and lease the next in one statement when nothing else happens.
    FAST_PATH: bool = True
    #: Each sweeper ends the leases of its own host's dead processes at once (Linux /proc).
    RECLAIM_DEAD_OWNERS: bool = True
    #: Start the recovery sweeper inside every Celery worker.
    WORKER_SWEEPER: bool = True
    #: Retry delays up to this many seconds are also sent as a Celery countdown hint.
    COUNTDOWN_HINT_MAX: float = 5.0
    #: The admin hides values under keys containing one of these (compared in lower case,
    #: letters and digits only, so ``apikey`` also matches ``api_key`` and ``API-Key``).
    ADMIN_REDACT: tuple[str, ...] = DEFAULT_ADMIN_REDACT


class _Settings:
    def __getattr__(self, name: str) -> Any:
        default = getattr(_Defaults, name)
        return getattr(django_settings, f"DURABLE_{name}", default)


settings = _Settings()
