"""A local mesh for end-to-end tests, run as a user runs it (``pilotfish up --detach`` in a
directory of its own, ``pilotfish down`` after), with what the tests do to it: apply and delete
Istio YAML through istiod's API and wait until every proxy has acknowledged the change, send
requests through the ingress gateway or a workload's sidecar, and read workloads' logs.

Each mesh's addresses are a /24 of 127/8 chosen from its directory, so meshes of tests running
in parallel never meet.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import yaml

PILOTFISH = [sys.executable, "-c", "from pilotfish.cli.main import main; main()"]
from ..corpus import CORPUS

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ISTIO_SAMPLES = CORPUS / "bookinfo" / "samples"
NETWORKING = ISTIO_SAMPLES / "bookinfo" / "networking"
T = TypeVar("T")

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_DIRECT_NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def request(url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None,
            proxy: str | None = None, timeout: float = 30.0, method: str | None = None) -> Reply:
    """One HTTP request, directly or through ``proxy`` (a sidecar's HTTP proxy listener, as an
    app's HTTP_PROXY uses it); redirects are not followed."""
    opener = _DIRECT_NO_REDIRECT
    if proxy is not None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}), _NoRedirect())
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    start = time.monotonic()
    try:
        with opener.open(req, timeout=timeout) as r:
            body = r.read().decode(errors="replace")
            return Reply(r.status, body, {k.lower(): v for k, v in r.headers.items()}, time.monotonic() - start)
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        return Reply(e.code, body, {k.lower(): v for k, v in e.headers.items()}, time.monotonic() - start)


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """The first truthy value of ``check()``; OSError counts as not yet."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")
        time.sleep(interval)


def counter(address: str, name: str, admin_port: int = 15000) -> int:
    """One counter of the proxy whose admin listens on ``address`` (0 when it has none yet)."""
    body = request(f"http://{address}:{admin_port}/stats?{urlencode({'filter': f'^{re.escape(name)}$'})}").body
    return sum(int(v) for line in body.splitlines() if (v := line.partition(": ")[2]).isdigit())


class Mesh:
    def __init__(self, root: Path) -> None:
        self.root = root

    # ---------------------------------------------------------------- life

    def run(self, *args: str, timeout: float = 180, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*PILOTFISH, *args], cwd=self.root, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"pilotfish {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def up(self, *files: str | Path, extra: Iterable[str] = ()) -> None:
        args = ["up", "--detach", *extra]
        for f in files:
            args += ["-f", str(f)]
        self.run(*args, check=True)

    def down(self) -> None:
        self.run("down")
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def processes(self) -> list[int]:
        """Processes running in the mesh's directory (istiod, agents, proxies, apps)."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cwd = os.readlink(entry / "cwd")
                zombie = (entry / "stat").read_text().rsplit(") ", 1)[1][:1] == "Z"
            except OSError:
                continue
            if not zombie and (cwd == str(self.root) or cwd.startswith(str(self.root) + "/")):
                out.append(int(entry.name))
        return out

    # ---------------------------------------------------------------- state

    def status(self) -> dict[str, Any]:
        return json.loads(self.run("status", "-o", "json", check=True).stdout)  # type: ignore[no-any-return]

    @property
    def mesh(self) -> dict[str, Any]:
        return json.loads((self.root / ".pilotfish" / "mesh.json").read_text())  # type: ignore[no-any-return]

    @property
    def ingress(self) -> str:
        return str(self.mesh["ingress_url"])

    @property
    def istiod(self) -> str:
        return str(self.mesh["istiod"]["http"])

    def workloads(self, app: str | None = None) -> list[dict[str, Any]]:
        return [w for w in self.mesh["workloads"] if app is None or w["labels"].get("app") == app]

    def sidecar_proxy(self, app: str) -> str:
        """The HTTP_PROXY of ``app``'s first instance: requests sent there leave through its sidecar."""
        return f"http://127.0.0.1:{self.workloads(app)[0]['ports']['outbound']}"

    def log(self, name: str, container: str = "app") -> str:
        return self.run("logs", name, "-c", container, check=True).stdout

    # ---------------------------------------------------------------- config

    def apply(self, *sources: str | Path) -> None:
        """Apply files or YAML text through istiod's API, then wait until the proxies took it."""
        text = "\n---\n".join(Path(s).read_text() if isinstance(s, Path) else s for s in sources)
        r = request(f"{self.istiod}/apis/v1/resources", data=text.encode(), method="POST",
                    headers={"content-type": "application/yaml"})
        assert r.status == 200, r.body
        self.wait_synced()

    @contextlib.contextmanager
    def applied(self, *sources: str | Path) -> Iterator[None]:
        """The resources in force for the ``with`` block, deleted after (every proxy synced both ways)."""
        self.apply(*sources)
        try:
            yield
        finally:
            self.delete(*sources)

    def delete(self, *sources: str | Path) -> None:
        """Delete every resource the files or YAML text declare (those present)."""
        for s in sources:
            text = Path(s).read_text() if isinstance(s, Path) else s
            for doc in yaml.safe_load_all(text):
                if not doc:
                    continue
                meta = doc.get("metadata", {})
                query = urlencode({"kind": doc["kind"], "namespace": meta.get("namespace", "default"),
                                   "name": meta["name"]})
                r = request(f"{self.istiod}/apis/v1/resources?{query}", method="DELETE")
                assert r.status in (200, 404), r.body
        self.wait_synced()

    def wait_synced(self, timeout: float = 30.0) -> None:
        """Past istiod's debounce, every connected proxy has acknowledged what it was sent."""
        time.sleep(0.4)

        def synced() -> bool:
            rows = json.loads(request(f"{self.istiod}/debug/syncz").body)
            return bool(rows) and all(row.get(f"{t}_sent") == row.get(f"{t}_acked")
                                      for row in rows for t in ("cluster", "listener", "route", "endpoint"))

        eventually(synced, timeout)
