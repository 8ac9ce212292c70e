"""What several router tests share: a compiled route table and a request head."""

from __future__ import annotations

from typing import Any

from pilotfish.proxy.compile import compile_bootstrap
from pilotfish.proxy.compile.bootstrap_file import parse_bootstrap
from pilotfish.proxy.http.head import RequestHead

from ..conftest import bootstrap


def table(routes: list[dict[str, Any]], clusters: Any = ()) -> Any:
    doc = bootstrap(routes, list(clusters))
    return compile_bootstrap(parse_bootstrap(doc).message).runtime.listeners[0].hcm.route_table


def head(path: bytes, headers: Any = ()) -> RequestHead:
    h = RequestHead()
    h.set_path(path)
    h.headers = list(headers)
    return h
