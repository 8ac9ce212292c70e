"""The life of a stream as two small state machines, one per direction, as h11 keeps one per role.

A stream (router/stream.py; a mirror, router/shadow.py, has the response half) starts when a
request head has been read:

    request:   BODY ──► COMPLETE              the client's request, read whole
    response:  WAITING ──► RESPONDING ──► DONE
                  └──────────────────────► DONE

``WAITING``: nothing was sent to the client yet (routing, a fault delay, waiting for an upstream
connection, retries). ``RESPONDING``: a response head is out (from the upstream, a local reply,
or a tunnel's 101/200); its body and end follow. ``DONE``: the stream is over (the response
ended, or the stream was reset) and nothing more is sent; its bookkeeping has run. The two halves
move independently: an upstream may answer before the request is read whole, and a request may
complete while the response is streaming.

States are compared by identity on the request path (``stream.resp is DONE``). ``TRANSITIONS``
is the table; ``check`` verifies a move against it, and the test suite runs every stream it
starts with every move checked (tests/conftest.py), as Envoy checks its codec states with
debug-build assertions.
"""

from __future__ import annotations

from enum import IntEnum


class RequestState(IntEnum):
    BODY = 0
    COMPLETE = 1


class ResponseState(IntEnum):
    WAITING = 0
    RESPONDING = 1
    DONE = 2


BODY, COMPLETE = RequestState
WAITING, RESPONDING, DONE = ResponseState

#: Every allowed move (staying in a state is not a move and is always allowed).
TRANSITIONS: dict[IntEnum, frozenset[IntEnum]] = {
    BODY: frozenset({COMPLETE}),
    COMPLETE: frozenset(),
    WAITING: frozenset({RESPONDING, DONE}),
    RESPONDING: frozenset({DONE}),
    DONE: frozenset(),
}


class InvalidTransition(AssertionError):
    """A stream moved in a way the table does not allow: a bug in the proxy."""


def check(old: IntEnum, new: IntEnum) -> None:
    if new is not old and new not in TRANSITIONS[old]:
        raise InvalidTransition(f"stream state {old.name} -> {new.name}")
