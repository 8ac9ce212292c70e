"""x-request-id values: version-4 UUIDs made in batches from an injected random source."""

from __future__ import annotations

from typing import Any

# A hex digit → the RFC 4122 variant digit (10xx) with the same low two bits.
_VARIANT = bytes(b"89ab"[int(chr(c), 16) & 3] if chr(c) in "0123456789abcdef" else c for c in range(256))


class RequestIds:
    """Version-4 UUIDs for x-request-id, made 512 at a time from the injected random source.

    Formatting one UUID per request in Python costs more than a microsecond; a batch is one
    hex conversion and a few strided slice assignments, so a request pays a list pop.
    """

    __slots__ = ("randbytes", "ready")

    BATCH = 512

    def __init__(self, rng: Any) -> None:
        self.randbytes = rng.randbytes
        self.ready: list[bytes] = []

    def __call__(self) -> bytes:
        ready = self.ready
        if not ready:
            ready = self.ready = self._batch()
        return ready.pop()

    def _batch(self) -> list[bytes]:
        n = self.BATCH
        raw = bytearray(self.randbytes(18 * n).hex().encode())  # 36 hex digits per id
        dash = b"-" * n
        raw[8::36] = dash
        raw[13::36] = dash
        raw[18::36] = dash
        raw[23::36] = dash
        raw[14::36] = b"4" * n  # version 4
        raw[19::36] = raw[19::36].translate(_VARIANT)
        data = bytes(raw)
        ids = [data[i:i + 36] for i in range(0, 36 * n, 36)]
        ids.reverse()  # pop() hands them out in generation order
        return ids


def request_id(rng: Any) -> bytes:
    """One version-4 UUID from ``rng`` (for callers without a RequestIds batch)."""
    h = b"%032x" % rng.getrandbits(128)
    return b"%s-%s-4%s-%c%s-%s" % (h[:8], h[8:12], h[13:16], b"89ab"[h[16] & 3], h[17:20], h[20:])
