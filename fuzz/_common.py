"""What every harness shares: the input format, invariant failures, known bugs, and the atheris entry.

A harness module defines ``test_one_input(data: bytes)`` and is runnable as a script
(``python fuzz/<name>.py [libFuzzer flags] [corpus dirs]``). It imports the code under test
inside ``instrumented(__name__)``, so atheris adds coverage only when the module runs as the
fuzzer; pytest imports the same module uninstrumented to replay crashers.

Input format (``split``): byte 0 says how many split points follow (``% 8``); each following
byte is the length of one piece (0 means 1); the rest is the payload, fed in those pieces and
then whatever is left in one. The same bytes therefore always replay the same feeds.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

#: Invariant violations that are known bugs, by signature (``Violation.signature``), with what
#: they are. While a bug is listed, a run that is not strict (``FUZZ_STRICT`` unset) skips it, so a
#: campaign keeps looking for new ones and the short runs in ``make test`` stay green; the crasher
#: replay test (tests/fuzz/test_crashers.py) pins each with an xfail until it is fixed.
KNOWN: dict[str, str] = {}  # none open: every crasher found so far is fixed and replays clean


class Violation(AssertionError):
    """An input broke an invariant of the code under test (not a crash of the harness)."""

    def __init__(self, signature: str, detail: str = "") -> None:
        super().__init__(f"{signature}: {detail}" if detail else signature)
        self.signature = signature


def strict() -> bool:
    return os.environ.get("FUZZ_STRICT", "") not in ("", "0")


def check(ok: object, signature: str, detail: str = "") -> None:
    """Raise a Violation unless ``ok``."""
    if not ok:
        raise Violation(signature, detail)


def signature(exc: BaseException) -> str:
    """A Violation's own signature; for any other exception its type and the innermost
    pilotfish frame (``uncaught AttributeError at pilotfish/proxy/upstream/pool.py:data_received``)."""
    if isinstance(exc, Violation):
        return exc.signature
    cause = exc.__context__
    if type(exc).__name__ == "HttpParserCallbackError" and cause is not None \
            and "HttpParser" not in type(cause).__name__:
        return signature(cause)  # what the codec callback raised
    where = "?"
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if "pilotfish" in code.co_filename:
            where = f"pilotfish{code.co_filename.rsplit('pilotfish', 1)[1]}:{code.co_name}"
        tb = tb.tb_next
    kind = type(exc).__name__
    if "HttpParser" in kind:  # httptools' error subclasses (invalid method, URL, ...): one kind
        kind = "HttpParserError"
    return f"uncaught {kind} at {where}"


def guarded(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """``fn`` with known bugs tolerated unless the run is strict."""

    def run(data: bytes) -> None:
        try:
            fn(data)
        except Exception as exc:
            if signature(exc) in KNOWN and not strict():
                return
            raise

    return run


def reraise_cause(error: Callable[[Exception], object], exc: Exception) -> object:
    """``error(exc)`` (a codec's error mapping); when it re-raises a callback's exception, raise
    what the callback raised instead, so a crash is reported where it happened."""
    try:
        return error(exc)
    except Exception as again:
        cause = again.__context__
        if cause is not None and again is exc:
            raise cause from None
        raise


def split(data: bytes) -> list[bytes]:
    """The pieces an input is fed in (see the module docstring)."""
    if not data:
        return []
    n = data[0] % 8
    sizes = [b or 1 for b in data[1:1 + n]]
    rest = data[1 + n:]
    pieces = []
    for size in sizes:
        if not rest:
            break
        pieces.append(rest[:size])
        rest = rest[size:]
    if rest:
        pieces.append(rest)
    return pieces


def join(payload: bytes, sizes: tuple[int, ...] = ()) -> bytes:
    """The input that feeds ``payload`` in pieces of ``sizes`` (the inverse of ``split``)."""
    assert len(sizes) < 8 and all(0 < s < 256 for s in sizes)
    return bytes([len(sizes), *sizes]) + payload


def _as_main(name: str) -> bool:
    return name == "__main__"


@contextlib.contextmanager
def instrumented(module_name: str) -> Iterator[None]:
    """Imports in this block get atheris coverage when ``module_name`` is ``"__main__"``."""
    if not _as_main(module_name):
        yield
        return
    import atheris

    with atheris.instrument_imports(include=["pilotfish"]):
        yield


def main(test_one_input: Callable[[bytes], None],
         custom_mutator: Callable[[bytes, int, int], bytes] | None = None) -> None:
    """Run libFuzzer on ``test_one_input`` with the command line's flags and corpus dirs."""
    import atheris

    if custom_mutator is None:
        atheris.Setup(sys.argv, guarded(test_one_input))
    else:
        atheris.Setup(sys.argv, guarded(test_one_input), custom_mutator=custom_mutator)
    atheris.Fuzz()
