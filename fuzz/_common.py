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
KNOWN: dict[str, str] = {
    "server: transfer-encoding accepted without chunked framing":
        "issue 11 A: `Transfer-Encoding: chunked ` (trailing space) fails endswith(b'chunked') on the "
        "untrimmed value, so the request goes on unframed while httptools still de-chunks it",
    "server: transfer-encoding other than one chunked accepted":
        "issue 11 A: `Transfer-Encoding: gzip, chunked` is delivered as chunked with gzip dropped "
        "(RFC 9112 / Envoy: 501)",
    "server: several host headers accepted":
        "issue 11 H: a request with two Host headers is forwarded (RFC 9112 §3.2: 400); the codec "
        "keeps the first",
    "server: host with whitespace accepted":
        "issue 11 H: `Host: a b` is forwarded (RFC 9112 §3.2: 400)",
    "server: target with a fragment accepted":
        "issue 11 H: `GET /a#frag` is forwarded with the fragment (Envoy rejects it with 400 by default)",
    "server: CONNECT with content accepted":
        "`CONNECT a:443 HTTP/1.1` with `Content-Length: 5` is delivered with content_length=5 "
        "(RFC 9110 §9.3.6: a CONNECT request has no content), while httptools ends the message at "
        "the head and hands those bytes to the tunnel: the stream and the tunnel disagree about them",
    "client: status outside 100-599 delivered":
        "`HTTP/1.1 000 OK` (or 600-999) from an upstream is delivered as a response head; RFC 9110 §15 "
        "status codes are 100-599, and the proxy would send `HTTP/1.1 0 Unknown` downstream",
    "client: transfer-encoding without a final chunked accepted":
        "an upstream `Transfer-Encoding: gzip` (or `chunkedx`) response is read as close-delimited; "
        "Envoy refuses it (http1.invalid_transfer_encoding), as issue 11 item 1 asks",
    "client: body outside a response":
        "an interim response 104-199 with a Content-Length has a body as far as httptools (llhttp) "
        "is concerned (it treats only 100-103 as bodiless); Http1ClientCodec drops the interim head "
        "but hands its body to on_response_body, so the stream writes those bytes to the client "
        "before any response head (upstream-controlled bytes on the downstream connection)",
    "client: chunked transfer-encoding not framed as chunked":
        "issue 11 A on responses: `Transfer-Encoding: chunked ` (trailing space) is reported as "
        "unframed (chunked=False) while httptools de-chunks the body",
    "uncaught HttpParserError at pilotfish/proxy/tunnel.py:downstream_upgraded":
        "an upgrade request that is refused (403: the upgrade type is not enabled) with more bytes "
        "after its head in the same read: `conn.parse is not conn.codec.parser.feed_data` is always "
        "true (each attribute access makes a new bound method; `!=` compares them), so the rest is "
        "fed to the stopped parser and its HttpParserError escapes data_received",
    "uncaught AttributeError at pilotfish/proxy/upstream.py:data_received":
        "issue 11 E: bytes after a complete upstream response (a 204 or 304 with a body, more than "
        "its Content-Length) arrive after the stream detached: `stream.conn` on None "
        "(AttributeError) escapes UpstreamConnection.data_received",
    "proxy: a request read is never answered on an open connection":
        "issue 11 C: an origin answering a plain GET with `101 Switching Protocols` leaves the "
        "client without a response on an open connection, even after every timeout",
    "proxy: unparseable response (no response line received)":
        "the client side of 'client: body outside a response': an interim 104-199 response's body "
        "(`HTTP/1.1 199 OK`, an unknown Transfer-Encoding, then bytes) is written to the client "
        "before the final response's head",
    "proxy: unparseable response (illegal status line)":
        "what the client gets does not start with a status line: `HTTP/1.1 0 Unknown` for an "
        "upstream's `HTTP/1.1 000 OK`, or an upstream interim 104-199 response's body written "
        "before the final response's head (see 'client: body outside a response')",
    "proxy: unsolicited 408 response":
        "issue 11 B: with request_headers_timeout set, the timer is armed at connect and after "
        "each stream, so an idle keep-alive connection whose requests were all complete and "
        "answered gets an unsolicited 408 and is closed (Envoy arms it at a request's first byte)",
    "uncaught IndexError at pilotfish/proxy/local_reply.py:finish":
        "an upstream response with status 600-999 (`HTTP/1.1 600 OK`): when it ends, "
        "local_reply.finish counts `stats.rq_class[status // 100]` and raises IndexError, out of "
        "UpstreamConnection.data_received (as HttpParserCallbackError) or, for a close-delimited "
        "one, out of connection_lost",
}


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
    pilotfish frame (``uncaught AttributeError at pilotfish/proxy/upstream.py:data_received``)."""
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
