"""JSON encoding that refuses anything that would not come back unchanged.

Values are stored as text we encode ourselves (not ``jsonb``, which reorders keys), and
the first execution of a workflow receives the decoded value too, so a first run and a
replay see exactly the same objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ..exceptions import PayloadTooLarge, SerializationError

__all__ = ["decode", "encode", "limit_payloads", "roundtrip"]

_HINTS: dict[type, str] = {
    set: "pass a sorted list instead",
    frozenset: "pass a sorted list instead",
    bytes: "pass a str (for example base64-encoded) instead",
}


def _hint(value: object) -> str:
    for kind, hint in _HINTS.items():
        if isinstance(value, kind):
            return hint
    name = type(value).__name__
    if name in {"datetime", "date", "time"}:
        return "pass value.isoformat() and parse it where it is used"
    if name in {"Decimal", "UUID"}:
        return "pass str(value) and convert it back where it is used"
    if hasattr(value, "_meta") and hasattr(value, "pk"):
        return "pass the primary key (value.pk) and load the object inside the step"
    return "pass only None, bool, int, float, str, list and dict with str keys"


def _check(value: object, path: str) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(
                f"{path} is {value!r}; NaN and Infinity are not valid JSON "
                "(PostgreSQL refuses them). Pass None or a finite number."
            )
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise SerializationError(
                f"{path} contains a NUL character (U+0000), which PostgreSQL cannot store. "
                "Remove it, or base64-encode binary data."
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError(
                f"{path} contains a lone surrogate and is not valid UTF-8. Fix the string's encoding."
            ) from None
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{path} has the key {key!r} ({type(key).__name__}); JSON keys are strings, "
                    f"so it would come back as {str(key)!r} and replay would differ. Use str keys."
                )
            _check(item, f"{path}[{key!r}]")
        return
    raise SerializationError(
        f"{path} is a {type(value).__module__}.{type(value).__qualname__}, which JSON cannot "
        f"store without loss; {_hint(value)}."
    )


def _no_limit() -> int | None:
    return None


#: The most bytes one stored value may take as JSON, or None; the app sets it from its settings.
_max_bytes: Callable[[], int | None] = _no_limit


def limit_payloads(max_bytes: Callable[[], int | None]) -> None:
    """Say where the size limit comes from (read at each use, so a change of settings applies at once)."""
    global _max_bytes
    _max_bytes = max_bytes


def encode(value: Any, path: str = "value") -> str:
    """Return compact JSON for ``value`` or raise :class:`SerializationError` naming ``path``.

    A value over the size limit raises :class:`PayloadTooLarge` (a ``SerializationError``).
    """
    _check(value, path)
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    limit = _max_bytes()
    if limit is not None and len(text) * 4 > limit:  # a character takes 4 bytes at most: measure only then
        size = len(text.encode("utf-8"))
        if size > limit:
            raise PayloadTooLarge(
                f"{path} is {_bytes(size)} as JSON, over the limit of {_bytes(limit)} "
                "(DURABLE_MAX_PAYLOAD_BYTES); keep large data elsewhere (a file, a table) and pass its key."
            )
    return text


def _bytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MiB" if size >= 1_048_576 else f"{size:,} bytes"


def decode(text: str) -> Any:
    """Decode text produced by :func:`encode`."""
    return json.loads(text)


def roundtrip(value: Any, path: str = "value") -> tuple[str, Any]:
    """Encode ``value`` and decode it again: the stored text and what replay will see."""
    text = encode(value, path)
    return text, json.loads(text)
