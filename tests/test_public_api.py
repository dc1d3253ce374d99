"""The public API is exactly ``durable_django.__all__``, and every name is what it says."""

from __future__ import annotations

import inspect

import pytest

import durable_django as durable


@pytest.mark.parametrize("name", durable.__all__)
def test_every_public_name_is_a_class_or_function_not_a_module(name):
    value = getattr(durable, name)
    assert not inspect.ismodule(value), f"durable.{name} is shadowed by the submodule {value.__name__}"
    assert inspect.isclass(value) or callable(value)


def test_an_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        durable.nope  # noqa: B018
