"""The connection manager's path normalization (HCM ``normalize_path``, ``merge_slashes``,
``path_with_escaped_slashes_action``), as Envoy's ``ConnectionManagerUtility::maybeNormalizePath``.

It runs before routing, on the path the router, the filters and the upstream all see (the query
string is never touched), so a route rule cannot be dodged with ``/a/../admin`` or ``/%61dmin``.
The order is Envoy's: escaped slashes first (``%2F``/``%5C``, any case: kept, rejected → 400,
unescaped and redirected → 307 with ``location``, or unescaped and forwarded), then RFC 3986
canonicalization (``canonical_path``: Envoy's copy of Chromium's ``CanonicalizePath``; a path it
cannot canonicalize → 400), then merging slashes. Stats ``downstream_rq_failed_path_normalization``
and ``downstream_rq_redirected_with_normalized_path``.

A connection manager with none of these configured has no normalizer (``HcmConfig.pre_route`` is
None): nothing runs per request.
"""

from __future__ import annotations

from typing import Any

# path_with_escaped_slashes_action (IMPLEMENTATION_SPECIFIC_DEFAULT is KEEP_UNCHANGED in Envoy,
# through the runtime key http_connection_manager.path_with_escaped_slashes_action)
KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD = 1, 2, 3, 4
# What normalize() decides
CONTINUE, REDIRECT, REJECT = range(3)

# Chromium's kPathCharLookup as Envoy's fork has it: what happens to a byte in a path.
_PASS, _ESCAPE, _UNESCAPE, _INVALID = range(4)


def _table() -> list[int]:
    t = [_ESCAPE] * 256
    t[0] = _INVALID
    for c in b"!$&'()*+,/:;=@[]":
        t[c] = _PASS
    for c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_~":
        t[c] = _UNESCAPE
    return t


_LOOKUP = _table()
_HEX = frozenset(b"0123456789abcdefABCDEF")
# Bytes copied as they are: nothing in the path needs a look at each byte when all are these.
_PLAIN = bytes(c for c in range(256) if _LOOKUP[c] in (_PASS, _UNESCAPE))
_QUICK = _PLAIN + b"?"  # a whole request target of these needs no work


def _decode_escaped(path: bytes, i: int, end: int) -> int:
    """The byte ``%XX`` at ``i`` stands for, or -1 when it is not a valid escape."""
    if i + 2 < end and path[i + 1] in _HEX and path[i + 2] in _HEX:
        return int(path[i + 1:i + 3], 16)
    return -1


def _is_dot(path: bytes, i: int, end: int) -> int:
    """Length of the dot at ``i`` (``.`` or ``%2e``), else 0."""
    c = path[i]
    if c == 0x2E:
        return 1
    if c == 0x25 and i + 2 < end and path[i + 1] == 0x32 and path[i + 2] in (0x65, 0x45):
        return 3
    return 0


def _after_dot(path: bytes, j: int, end: int) -> tuple[int, int]:
    """Chromium's ClassifyAfterDot: (0 not a directory / 1 current / 2 up, bytes consumed)."""
    if j == end:
        return 1, 0
    if path[j] in (0x2F, 0x5C):
        return 1, 1
    n = _is_dot(path, j, end)
    if n:
        k = j + n
        if k == end:
            return 2, n
        if path[k] in (0x2F, 0x5C):
            return 2, n + 1
    return 0, 0


def _back_up(out: bytearray) -> None:
    """Chromium's BackUpToPreviousSlash (``out`` ends with a slash; the first one stays)."""
    i = len(out) - 1
    if i == 0:
        return
    i -= 1
    while out[i] != 0x2F and i > 0:
        i -= 1
    del out[i + 1:]


def canonical_path(path: bytes) -> bytes | None:
    """Envoy's ``PathUtil::canonicalPath`` of a path without its query: dot segments removed,
    ``\\`` made ``/``, escapes of unreserved characters decoded (other escapes kept exactly,
    case included), bytes URLs may not hold escaped; None when it cannot be normalized (an
    escaped or raw NUL)."""
    if path.find(b".;") != -1:  # Envoy's strip_dotdot_segments_with_parameters
        path = b"/".join(b".." if s.startswith(b"..;") else b"." if s.startswith(b".;") else s
                         for s in path.split(b"/"))
    if path[:1] == b"/" and not path.translate(None, _PLAIN):
        return path  # nothing to decode, escape or resolve
    end = len(path)
    out = bytearray()
    if not end:
        return b"/"
    if path[0] not in (0x2F, 0x5C):
        out.append(0x2F)
    ok = True
    last_bad_percent = -10
    lookup = _LOOKUP
    i = 0
    while i < end:
        c = path[i]
        flag = lookup[c]
        if c == 0x2E or c == 0x25 or c == 0x5C or flag == _ESCAPE or flag == _INVALID:
            dot = _is_dot(path, i, end)
            if dot:
                if out and out[-1] == 0x2F:
                    kind, used = _after_dot(path, i + dot, end)
                    if kind == 0:
                        out.append(0x2E)
                        i += dot
                    elif kind == 1:
                        i += dot + used
                    else:
                        _back_up(out)
                        i += dot + used
                else:
                    out.append(0x2E)
                    i += dot
                continue
            if c == 0x5C:
                out.append(0x2F)
            elif c == 0x25:
                value = _decode_escaped(path, i, end)
                if value >= 0:
                    vflag = lookup[value]
                    if vflag == _UNESCAPE:
                        out.append(value)
                        if last_bad_percent >= len(out) - 3:
                            _nested_escapes(path, i + 3, end, last_bad_percent, out)
                    else:
                        out += path[i:i + 3]
                        if vflag == _INVALID:
                            ok = False
                    i += 3
                    continue
                last_bad_percent = len(out)
                out.append(0x25)
            elif flag == _INVALID:
                out += b"%%%02X" % c
                ok = False
            else:
                out += b"%%%02X" % c
        else:
            out.append(c)
        i += 1
    return bytes(out) if ok else None


def _nested_escapes(path: bytes, nxt: int, end: int, bad: int, out: bytearray) -> None:
    """Chromium's CheckForNestedEscapes: ``%%30`` must not become a valid ``%0…`` escape."""
    length = len(out)
    last = out[-1]
    append_next = bad == length - 2
    if append_next:
        if nxt == end or path[nxt] >= 0x80:
            return
        out.append(path[nxt])
    if _decode_escaped(bytes(out), bad, len(out)) >= 0:
        if not append_next:
            out.append(out[bad + 1])
        out[bad + 1] = 0x32
        out[bad + 2] = 0x35
        out.append(last)
    elif append_next:
        del out[length:]


def merge_slashes(path: bytes) -> bytes:
    """Envoy's ``PathUtil::mergeSlashes`` of a path without its query."""
    if path.find(b"//") == -1:
        return path
    prefix = b"/" if path.startswith(b"/") else b""
    suffix = b"/" if path.endswith(b"/") else b""
    return prefix + b"/".join(s for s in path.split(b"/") if s) + suffix


def unescape_slashes(path: bytes) -> bytes:
    """``%2F``/``%2f`` → ``/`` and ``%5C``/``%5c`` → ``\\`` (Envoy's ``unescapeSlashes``)."""
    if path.find(b"%") == -1:
        return path
    return (path.replace(b"%2F", b"/").replace(b"%2f", b"/")
            .replace(b"%5C", b"\\").replace(b"%5c", b"\\"))


class PathNormalizer:
    """One connection manager's path settings, applied to a path (the query kept apart)."""

    __slots__ = ("normalize", "merge", "escaped_slashes")

    def __init__(self, normalize: bool, merge: bool, escaped_slashes: int) -> None:
        self.normalize = normalize
        self.merge = merge
        self.escaped_slashes = escaped_slashes

    def apply(self, target: bytes) -> tuple[int, bytes]:
        """(CONTINUE/REDIRECT/REJECT, the new path with its query)."""
        q = target.find(b"?")
        path, query = (target, b"") if q == -1 else (target[:q], target[q:])
        action = CONTINUE
        esc = self.escaped_slashes
        if esc != KEEP_UNCHANGED and path.find(b"%") != -1:
            unescaped = unescape_slashes(path)
            if len(unescaped) != len(path):
                if esc == REJECT_REQUEST:
                    return REJECT, target
                path = unescaped
                if esc == UNESCAPE_AND_REDIRECT:
                    action = REDIRECT
        if self.normalize:
            canonical = canonical_path(path)
            if canonical is None:
                return REJECT, target
            path = canonical
        if self.merge:
            path = merge_slashes(path)
        return action, path + query

    def __call__(self, stream: Any) -> bool:
        """The pre-route hook: True when the stream was answered (400 or 307)."""
        head = stream.head
        target = head.path
        if not target.translate(None, _QUICK) and target.find(b"//") == -1:
            return False  # no dot, escape or backslash, nothing to merge: nothing would change
        if target[:1] != b"/":  # OPTIONS *, CONNECT: no path to normalize
            return False
        action, path = self.apply(target)
        if action == CONTINUE:
            if path != target:
                head.set_path(path)
            return False
        stats = stream.hcm.stats
        if action == REDIRECT:
            ctype = _content_type(head.headers)
            if not ctype.startswith(b"application/grpc"):  # gRPC clients do not follow redirects
                stats.downstream_rq_redirected_with_normalized_path += 1
                head.set_path(path)
                stream.local_reply(307, b"", extra=((b"location", path),), details="path_normalization_failed")
                return True
        stats.downstream_rq_failed_path_normalization += 1
        stream.local_reply(400, b"", details="path_normalization_failed")
        return True


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == b"content-type":
            return value
    return b""
