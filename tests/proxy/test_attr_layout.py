"""The per-request classes' primed field lists (attr_layout.py) stay true to the classes."""

from __future__ import annotations

import pytest

from pilotfish.proxy import http1, stream
from pilotfish.proxy.attr_layout import MAX_PRIMED, prime


def _declared(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(vars(klass))
        names.update(getattr(klass, "__annotations__", {}))
    return names


@pytest.mark.parametrize(("cls", "fields"), [
    (stream.Stream, stream._PLAIN_FIELDS),
    (stream.ResilientStream, stream._RESILIENT_FIELDS),
    (http1.RequestHead, http1._HEAD_FIELDS),
])
def test_primed_fields_are_fields_of_the_class(cls: type, fields: tuple[str, ...]) -> None:
    # A renamed field left in the list would prime a name no request sets (and leave the
    # real one on the slow path): every primed name must be one the class declares.
    assert len(fields) <= MAX_PRIMED
    assert len(set(fields)) == len(fields)
    assert set(fields) <= _declared(cls), set(fields) - _declared(cls)
    # A property would run its setter instead of adding a key.
    assert not [f for f in fields if isinstance(getattr(cls, f, None), property)]


def test_prime_refuses_more_names_than_fit() -> None:
    class Roomy:
        pass

    with pytest.raises(ValueError, match="at most 29"):
        prime(Roomy, [f"f{i}" for i in range(MAX_PRIMED + 1)])
