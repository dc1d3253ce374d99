"""The client of the fake payment API, as an application would write it: one HTTP call per effect.

Every call carries the step's idempotency key, so a retry after a crash or a lost
response repeats nothing at the provider.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings


class CardDeclined(Exception):
    """The provider declined the card: retrying will not help."""


class ProviderRefused(Exception):
    """The provider refused the request as malformed (an idempotency key reused with other parameters...)."""


class ProviderUnavailable(Exception):
    """A 5xx, a timeout or a dropped connection: the request may or may not have been applied."""


def post(path: str, body: dict[str, Any], *, idempotency_key: str, timeout: float = 3.0) -> dict[str, Any]:
    url = urlsplit(settings.CHAOS_API_URL)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        )
        response = connection.getresponse()
        status, data = response.status, response.read()
    except (OSError, http.client.HTTPException) as error:
        raise ProviderUnavailable(f"POST {path}: {type(error).__name__}: {error}") from error
    finally:
        connection.close()
    payload: dict[str, Any] = json.loads(data or b"{}")
    if status == 200:
        return payload
    if status == 402:
        raise CardDeclined(payload.get("error", "declined"))
    if status >= 500:
        raise ProviderUnavailable(f"POST {path}: {status}")
    raise ProviderRefused(f"POST {path}: {status} {payload}")


def charge(order_id: int, amount_cents: int, *, idempotency_key: str) -> dict[str, Any]:
    return post("/charges", {"order_id": order_id, "amount_cents": amount_cents}, idempotency_key=idempotency_key)


def refund(order_id: int, charge_id: str, *, idempotency_key: str) -> dict[str, Any]:
    return post("/refunds", {"order_id": order_id, "charge_id": charge_id}, idempotency_key=idempotency_key)


def send_email(order_id: int, kind: str, *, idempotency_key: str) -> dict[str, Any]:
    return post("/emails", {"order_id": order_id, "kind": kind}, idempotency_key=idempotency_key)


def refund_order(order_id: int, *, idempotency_key: str) -> dict[str, Any]:
    """Refund the order's charge by the order's reference, whether or not its charge step's result came back."""
    return post("/refunds", {"order_id": order_id, "charge_id": ""}, idempotency_key=idempotency_key)
