"""The per-request classes' primed field lists (attr_layout.py) stay true to the classes, and
requests leave streams and heads on CPython's fast attribute path."""

from __future__ import annotations

import ctypes
import sys

import pytest

from pilotfish.proxy.http import http1
from pilotfish.proxy.router import stream
from pilotfish.proxy.common.attr_layout import MAX_PRIMED, prime

from .conftest import Backend, client, port_of, running_proxy
from .test_retries_e2e import doc_for


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


def _has_real_dict(obj: object) -> bool:
    """CPython 3.11: an instance with inline attribute values has no dict object (the managed
    dict pointer, three words before the object, is NULL) until something makes one."""
    return ctypes.c_void_p.from_address(id(obj) - 3 * ctypes.sizeof(ctypes.c_void_p)).value is not None


@pytest.mark.skipif(sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11),
                    reason="reads CPython 3.11's object layout")
@pytest.mark.parametrize(("retry", "attempt_count"), [
    (None, False),
    # Istio's route: its default retry policy, x-envoy-attempt-count sent upstream
    ({"retry_on": "connect-failure,refused-stream,retriable-status-codes", "num_retries": 2,
      "retriable_status_codes": [503]}, True),
])
async def test_requests_keep_streams_on_the_fast_attribute_path(
        backend: Backend, monkeypatch: pytest.MonkeyPatch, retry: dict | None, attempt_count: bool) -> None:
    # One more field name set per request (beyond the primed lists) turns every stream's
    # attributes into a dict: ~7% more instructions per request, and no test would fail.
    seen: list[tuple[str, bool, bool]] = []
    finish = stream.Stream.finish

    def checked_finish(self: stream.Stream) -> None:
        seen.append((type(self).__name__, _has_real_dict(self), _has_real_dict(self.head)))
        finish(self)

    monkeypatch.setattr(stream.Stream, "finish", checked_finish)
    doc = doc_for([backend.port], retry, vhost={"include_request_attempt_count": attempt_count})
    async with running_proxy(doc) as proxy:
        async with client(port_of(proxy)) as c:
            await c.request("POST", "/warm", body=b"abc")  # a new upstream connection: the body waits
            for _ in range(40):
                assert (await c.request("GET", "/x", {"user-agent": "t"})).status == 200
                assert (await c.request("POST", "/y", body=b"abc")).status == 200
    kind = "ResilientStream" if retry else "Stream"
    assert len(seen) == 81 and {k for k, _, _ in seen} == {kind}
    seen = seen[1:]  # (the first stream sets the rarely used pending fields)
    assert not any(d for _, d, _ in seen), "streams fell back to a dict: see attr_layout.py"
    assert not any(h for _, _, h in seen), "request heads fell back to a dict: see attr_layout.py"
