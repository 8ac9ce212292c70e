"""Write the checked-in seed corpora (fuzz/corpus/<target>/): a few valid messages each.

Run after changing the seeds here: ``python fuzz/seeds.py``. The bootstrap seeds
(fuzz/corpus/bootstrap_yaml/) are Istio's sidecar bootstrap (tests/proxy/data) and bootstraps
the test suite parses, kept by harvest_bootstraps.py and picked by ``harvest`` below (access
log paths under pytest's temporary directories replaced by /dev/null).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from _common import join

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"POST /upload?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"GET /direct HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-drop\r\nx-drop: 1\r\n\r\n"
    b"HEAD /direct HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a.example/p?q HTTP/1.1\r\nHost: b\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
]

# Requests for the downstream target's routes (fuzz/downstream.py BOOTSTRAP).
DOWNSTREAM = REQUESTS + [
    b"POST /retry HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /r/x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    b"GET /direct HTTP/1.1\r\nHost: a\r\n\r\nGET /direct HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
]

RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nGrpc-Status: 0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes",
    b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\n\r\nbody",
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\n\r\n",
]

SPLITS = [(), (1,), (7, 3, 20), (16, 16, 16, 16)]


def write(target: str, payloads: list[bytes]) -> None:
    d = Path(__file__).parent / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for i, payload in enumerate(payloads):
        data = join(payload, SPLITS[i % len(SPLITS)])
        (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def write_upstream() -> None:
    """The upstream target's inputs: a byte choosing the client request, then the response bytes."""
    d = Path(__file__).parent / "corpus" / "upstream"
    d.mkdir(parents=True, exist_ok=True)
    for i, payload in enumerate(RESPONSES):
        for request in (i % 7, (i + 3) % 7):
            data = bytes([request]) + join(payload, SPLITS[i % len(SPLITS)])
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


if __name__ == "__main__":
    write_upstream()
    write("http1_server", REQUESTS)
    write("downstream", DOWNSTREAM)
    write("http1_client", RESPONSES)


def harvest(docs_dir: str, limit: int = 40) -> None:
    """Pick up to ``limit`` bootstraps (JSON files, one per document the tests parsed) that
    together use the most distinct fields, and write them as YAML seeds."""
    import json

    import yaml

    def keys(node: object, prefix: str = "") -> set[str]:
        out: set[str] = set()
        if isinstance(node, dict):
            for k, v in node.items():
                p = f"{prefix}.{k}"
                out.add(p if k != "@type" else f"{p}={v}")
                out |= keys(v, p)
        elif isinstance(node, list):
            for v in node:
                out |= keys(v, prefix)
        return out

    docs = [json.loads(p.read_text()) for p in sorted(Path(docs_dir).glob("*.json"))]
    pool = [(keys(d), d) for d in docs]
    seen: set[str] = set()
    d = Path(__file__).parent / "corpus" / "bootstrap_yaml"
    d.mkdir(parents=True, exist_ok=True)
    for _ in range(limit):
        pool.sort(key=lambda kd: (len(kd[0] - seen), -len(json.dumps(kd[1]))), reverse=True)
        if not pool or not pool[0][0] - seen:
            break
        ks, doc = pool.pop(0)
        seen |= ks
        text = yaml.safe_dump(_no_tmp_paths(doc), sort_keys=False).encode()
        (d / (hashlib.sha1(text).hexdigest() + ".yaml")).write_bytes(text)


def _no_tmp_paths(node: object) -> object:
    """The document with paths under pytest's temporary directories replaced by /dev/null."""
    if isinstance(node, dict):
        return {k: _no_tmp_paths(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_no_tmp_paths(v) for v in node]
    if isinstance(node, str) and node.startswith("/tmp/pytest-of-"):
        return "/dev/null"
    return node
