"""``regex_rewrite`` as Envoy applies it: RE2's ``GlobalReplace``.

Python's ``re.sub`` (and google-re2's, which follows it) allows an empty match right after a
non-empty one, so ``.*`` → ``/echo`` turns ``/foo`` into ``/echo/echo``; RE2 disallows an
empty match at the end of the previous match and gives ``/echo``. The substitution uses RE2's
syntax: ``\\0``–``\\9`` name a capture group, ``\\\\`` is a backslash.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def _template(substitution: str) -> tuple[str | int, ...]:
    """The substitution as literal strings and group numbers."""
    parts: list[str | int] = []
    literal: list[str] = []
    i = 0
    while i < len(substitution):
        c = substitution[i]
        if c == "\\" and i + 1 < len(substitution):
            n = substitution[i + 1]
            if n.isdigit():
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(int(n))
                i += 2
                continue
            if n == "\\":
                literal.append("\\")
                i += 2
                continue
        literal.append(c)
        i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def global_replace(regex: Any, substitution: str, text: str) -> str:
    """Replace every non-overlapping match of ``regex`` (a compiled RE2 pattern) in ``text``."""
    template = _template(substitution)
    out: list[str] = []
    pos = 0
    last_end = -1
    n = len(text)
    while pos <= n:
        m = regex.search(text, pos)
        if m is None:
            break
        start, end = m.span()
        if start == end and start == last_end:  # no empty match where the last one ended
            if start < n:
                out.append(text[start])
            pos = start + 1
            continue
        out.append(text[pos:start])
        for part in template:
            out.append(part if isinstance(part, str) else (m.group(part) or ""))
        pos = last_end = end
    if pos < n:
        out.append(text[pos:])
    return "".join(out)
