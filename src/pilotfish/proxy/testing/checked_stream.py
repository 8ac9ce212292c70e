"""The router's Stream with every state move checked against common/stream_states.py."""

from __future__ import annotations

from typing import Any

from ..common.stream_states import InvalidTransition, check
from ..router.stream import Stream
from ..router.stream_state import StreamState


# ---- the stream's states ----------------------------------------------------------------
def _checked(slot: Any) -> property:
    def get(self: Any) -> Any:
        return slot.__get__(self)

    def set_(self: Any, new: Any) -> None:
        try:
            old = slot.__get__(self)
        except AttributeError:  # the first, in __init__
            old = new
        try:
            check(old, new)
        except InvalidTransition as exc:  # kept: the proxy contains errors in callbacks
            CheckedStream.violations.append(str(exc))
            raise
        slot.__set__(self, new)

    return property(get, set_)


class CheckedStream(Stream):
    """A Stream that raises ``InvalidTransition`` on a state move the table does not allow, and
    records it in ``violations`` (the proxy contains an error raised in a callback, so a test
    reads the record rather than relying on the exception reaching it)."""

    __slots__ = ()
    violations: list[str] = []
    req = _checked(StreamState.req)  # type: ignore[assignment]
    resp = _checked(StreamState.resp)  # type: ignore[assignment]
