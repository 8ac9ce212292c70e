"""RE2 syntax checks: Istio validates every regex with RE2 syntax and Envoy runs them with RE2.

A pattern Python's ``re`` accepts (lookarounds, backreferences, possessive quantifiers) may be
one RE2 refuses, and the reverse (``\\pL``, ``\\z``); so the check uses RE2 itself.
"""

from __future__ import annotations

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False

# RE2's reasons, in the words of Go's regexp/syntax (which Istio's webhook prints).
_GO_WORDING = {
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid repetition size": "invalid repeat count",
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid named capture group": "invalid named capture",
    "trailing \\": "trailing backslash at end of expression",
    "pattern too large - compile failed": "expression too large",
}


def re2_error(pattern: str) -> str | None:
    """None when RE2 compiles ``pattern``, else "error parsing regexp: <RE2's reason>"."""
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        code, sep, expr = reason.partition(": ")
        code = _GO_WORDING.get(code, code)
        return f"error parsing regexp: {code}: `{expr}`" if sep else f"error parsing regexp: {code}"
    return None
