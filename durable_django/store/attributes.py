"""The ``attributes`` column: a ``JSONField`` whose key equality a GIN index can answer.

Django compiles ``filter(attributes__customer=42)`` to ``(attributes -> 'customer') = '42'``,
which no index on the column serves. For a scalar (or None) compared with ``=``, asking
whether the column contains ``{"customer": 42}`` (``@>``) means the same thing, and the
``jsonb_path_ops`` GIN index migration ``0005`` creates on PostgreSQL answers it. Lists
and objects keep Django's own SQL: containment would also match a list that holds more.
Other databases keep Django's SQL for everything.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import JSONField
from django.db.models.fields.json import KeyTransform, KeyTransformExact, KeyTransformFactory

__all__ = ["AttributesField"]

_SCALARS = (str, int, float, bool, type(None))


class _AttributeKey(KeyTransform):
    """A key of ``attributes``; a class of its own so the lookup below applies to this field only."""


class _ContainedExact(KeyTransformExact):
    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        keys: list[str] = []
        node: Any = self.lhs
        while isinstance(node, KeyTransform):
            keys.insert(0, node.key_name)
            node = node.lhs
        value = self.rhs
        # An integer-looking key may mean an array index to Django; an expression is no literal.
        if not isinstance(value, _SCALARS) or hasattr(value, "resolve_expression") or any(k.isdigit() for k in keys):
            return super().as_sql(compiler, connection)
        for key in reversed(keys):
            value = {key: value}
        column, params = compiler.compile(node)
        return f"{column} @> %s::jsonb", (*params, json.dumps(value))


_AttributeKey.register_lookup(_ContainedExact)


class _AttributeKeyFactory:
    def __init__(self, key_name: str) -> None:
        self.key_name = key_name

    def __call__(self, *args: Any, **kwargs: Any) -> _AttributeKey:
        return _AttributeKey(self.key_name, *args, **kwargs)


class AttributesField(JSONField):
    """A JSON object of the caller's own keys, to find runs by (``filter(attributes__customer=42)``)."""

    def get_transform(self, name: str) -> Any:
        transform = super().get_transform(name)
        return _AttributeKeyFactory(name) if isinstance(transform, KeyTransformFactory) else transform
