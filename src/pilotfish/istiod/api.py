"""istiod's HTTP API: readiness, Prometheus metrics, Istio's debug endpoints, and resource CRUD
for `pilotfish apply / get / delete`.

Resources applied here are validated with Istio's rules first: a request with any invalid
document is refused whole (400, Istio's messages) and nothing is written. Accepted ones are
written atomically into the config directory's ``applied/`` folder (pilotfish.config.store), so
they survive a restart like any file there. Objects declared in the user's own files are read
only through the API: they change when their file does.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from ..config.errors import ConfigError, LoadError
from ..config.loader import UnknownKind, documents_from_text
from ..config.store import ConfigStore, NotFound
from .config_dir import document_resource
from .control_plane import ControlPlane
from .debug import as_object, config_dump, configz, registryz, syncz
from ..http_server import Request, Response

RESOURCES = "/apis/v1/resources"


class IstiodApi:
    def __init__(self, istiod: ControlPlane, applied_dir: Path) -> None:
        self.istiod = istiod
        self.store = ConfigStore(applied_dir)

    async def handle(self, request: Request) -> Response:
        if request.path == "/ready":
            return Response.text("ready\n") if self.istiod.ready else Response.text("not ready\n", 503)
        token = self.istiod.token
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return Response.text("a bearer token is required\n", 401)
        route = (request.method, request.path)
        if route == ("GET", "/metrics"):
            return Response(200, self.istiod.metrics().encode(), "text/plain; version=0.0.4")
        if route == ("GET", "/debug/syncz"):
            return _json(syncz(self.istiod))
        if route == ("GET", "/debug/configz"):
            return _json(configz(self.istiod.push_context))
        if route == ("GET", "/debug/registryz"):
            return _json(registryz(self.istiod.push_context))
        if route == ("GET", "/debug/config_dump"):
            return self._config_dump(request)
        if request.path == RESOURCES:
            if request.method == "GET":
                return self._get(request)
            if request.method in ("POST", "PUT"):
                return self._apply(request)
            if request.method == "DELETE":
                return self._delete(request)
            return Response.text("method not allowed\n", 405)
        return Response.text("not found\n", 404)

    # ---------------------------------------------------------------- debug

    def _config_dump(self, request: Request) -> Response:
        proxy_id = request.query.get("proxyID", "")
        node = self.istiod.node_of(proxy_id)
        if node is None:
            return Response.text(f"proxy {proxy_id!r} is not connected\n", 404)
        dump = config_dump(self.istiod, node)
        return Response.json(json_format.MessageToJson(dump, indent=1).encode())

    # ---------------------------------------------------------------- resources

    def _get(self, request: Request) -> Response:
        kind, ns, name = (request.query.get(k, "") for k in ("kind", "namespace", "name"))
        items = [r for r in self.istiod.config.resources()
                 if (not kind or r.kind.lower() == kind.lower()) and (not ns or r.namespace == ns)
                 and (not name or r.name == name)]
        if name and not items:
            return _json({"error": f"{kind or 'resource'} {ns}/{name} not found"}, 404)
        return _json({"items": [as_object(r) for r in items]})

    def _apply(self, request: Request) -> Response:
        try:
            text = request.body.decode()
        except UnicodeDecodeError:
            return _json({"errors": ["the request body is not UTF-8 text"]}, 400)
        resources, errors = [], []
        for doc in documents_from_text(text, "<request>"):
            if isinstance(doc, LoadError):
                errors.append(str(doc))
                continue
            if doc.data is None:
                continue
            try:
                resources.append(document_resource(doc))
            except UnknownKind as exc:
                errors.append(str(exc))
            except ConfigError as exc:
                errors.append(str(exc))
        for r in resources:
            owner = self.istiod.config.owner(r.kind, r.namespace, r.name)
            if owner is not None and not self._in_store(owner):
                errors.append(f"{r.ref} is declared in {owner}: change it there")
        if errors:
            return _json({"errors": errors}, 400)
        if not resources:
            return _json({"errors": ["no resources in the request"]}, 400)
        results, paths = [], set()
        for r in resources:
            try:
                before = self.store.get(r.kind, r.namespace, r.name)
            except NotFound:
                before = None
            if before is not None and _same(before.raw, r.raw):
                results.append({"ref": r.ref, "result": "unchanged"})
                continue
            stored = self.store.apply(r)
            paths.add(stored.position.file)
            results.append({"ref": r.ref, "result": "configured" if before is not None else "created"})
        if paths:
            self.istiod.config_changed(paths)
        return _json({"results": results})

    def _delete(self, request: Request) -> Response:
        kind, ns, name = (request.query.get(k, "") for k in ("kind", "namespace", "name"))
        ns = ns or "default"
        match = [r for r in self.store.list() if r.kind.lower() == kind.lower() and r.namespace == ns and r.name == name]
        if not match:
            owner = self.istiod.config.owner(_canonical_kind(self.istiod, kind), ns, name)
            if owner is not None:
                return _json({"errors": [f"{kind} {ns}/{name} is declared in {owner}: remove it there"]}, 409)
            return _json({"errors": [f"{kind} {ns}/{name} not found"]}, 404)
        gone = self.store.delete(match[0].kind, ns, name)
        self.istiod.config_changed({gone.position.file})
        return _json({"results": [{"ref": gone.ref, "result": "deleted"}]})

    def _in_store(self, path: str) -> bool:
        return path.startswith(str(self.store.root) + "/")


def _canonical_kind(istiod: ControlPlane, kind: str) -> str:
    for r in istiod.config.resources():
        if r.kind.lower() == kind.lower():
            return r.kind
    return kind


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        d = dict(d)
        meta = dict(d.get("metadata") or {})
        meta.pop("resourceVersion", None)
        meta.setdefault("namespace", "default")
        d["metadata"] = meta
        return d
    return strip(a) == strip(b)


def _json(data: Any, status: int = 200) -> Response:
    return Response.json((json.dumps(data, indent=1, default=str) + "\n").encode(), status)

