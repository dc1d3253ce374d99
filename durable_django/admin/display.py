"""How stored values read on screen: JSON, call arguments and durations.

Every value passes through :func:`~.redaction.redact` first; the functions here only
decide the shape: short values inline, long ones pretty-printed in a block.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from .redaction import REDACTED, is_call, redact, redact_call

__all__ = ["call", "duration", "json_block", "json_inline", "loads"]

#: Values whose compact JSON is longer than this are shown pretty-printed, on several lines.
INLINE_MAX = 80

_MARK = escape(json.dumps(REDACTED))


def loads(text: str | None) -> Any:
    """Decode stored JSON text; text that is not JSON is shown as it is rather than failing the page."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _pretty(value: Any, indent: str = "") -> str:
    """Indented JSON that keeps short parts on one line and fills lines with scalars, like a person would."""
    compact = _compact(value)
    if len(indent) + len(compact) <= INLINE_MAX or not value or not isinstance(value, dict | list):
        return compact
    inner = indent + "  "
    if isinstance(value, dict):
        lines = [f"{inner}{_compact(str(key))}: {_pretty(item, inner)}" for key, item in value.items()]
    elif any(isinstance(item, dict | list) for item in value):
        lines = [f"{inner}{_pretty(item, inner)}" for item in value]
    else:
        lines = [inner]
        for item in map(_compact, value):
            if len(lines[-1]) > len(inner) and len(lines[-1]) + len(item) + 2 > INLINE_MAX:
                lines[-1] = lines[-1].rstrip()
                lines.append(inner)
            lines[-1] += f"{item}, "
        lines[-1] = lines[-1].rstrip()
        return "[\n" + "\n".join(lines)[:-1] + f"\n{indent}]"
    brackets = "{}" if isinstance(value, dict) else "[]"
    return brackets[0] + "\n" + ",\n".join(lines) + f"\n{indent}{brackets[1]}"


def _marked(text: str) -> SafeString:
    # Escaped first, so the only markup is the one added here.
    return mark_safe(escape(text).replace(_MARK, f'<span class="durable-redacted">{_MARK}</span>'))


def json_block(value: Any, secrets: tuple[str, ...]) -> SafeString:
    """A redacted JSON value: inline ``<code>`` if short, else an indented ``<pre>``."""
    value = redact(value, secrets)
    compact = _compact(value)
    if len(compact) <= INLINE_MAX and "\n" not in compact:
        return format_html('<code class="durable-json">{}</code>', _marked(compact))
    return format_html('<pre class="durable-json">{}</pre>', _marked(_pretty(value)))


def json_inline(value: Any, secrets: tuple[str, ...]) -> SafeString:
    """A redacted JSON value on one line, whatever its length (for tables)."""
    return format_html('<code class="durable-json">{}</code>', _marked(_compact(redact(value, secrets))))


def call(arguments: Any, secrets: tuple[str, ...], names: tuple[str, ...] = ()) -> SafeString:
    """Stored ``{"args": [...], "kwargs": {...}}`` as ``(order_id=1, note="a", key=2)``, or as a block when long.

    ``names`` are the positional parameters' names (empty when the code is not in this
    process): each positional value shows under its name, and a secret passed by position
    is hidden too.
    """
    arguments = redact_call(arguments, names, secrets)
    if not is_call(arguments):
        return json_block(arguments, ())
    parts = [
        f"{names[index]}={_compact(item)}" if index < len(names) else _compact(item)
        for index, item in enumerate(arguments["args"])
    ]
    parts += [f"{key}={_compact(item)}" for key, item in arguments["kwargs"].items()]
    text = f"({', '.join(parts)})"
    if len(text) > INLINE_MAX:
        return json_block(arguments, ())
    return format_html('<code class="durable-json">{}</code>', _marked(text))


def duration(delta: timedelta | None) -> str:
    """``340 ms``, ``12.3 s``, ``4 min 3 s``, ``3 h 12 min``, ``29 d 3 h``; empty for None."""
    if delta is None:
        return ""
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    units = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    while units[0][0] == 0:  # from the largest unit present, two units, zeros dropped
        units.pop(0)
    return " ".join(f"{amount} {unit}" for amount, unit in units[:2] if amount)
