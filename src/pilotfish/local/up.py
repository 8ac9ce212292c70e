"""``up`` and ``down``: take the files into the store (all valid, or nothing stored), run the
supervisor in the foreground or detached, and stop a mesh — its supervisor, or whatever a
crashed one left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable

from ..config.base import Resource
from ..config.errors import ConfigError, LoadError
from ..config.loader import SourceError, load_documents, to_resource
from ..config.store import ConfigStore
from ..config.validation import validate
from ..config.kinds import with_default_namespace
from .mesh import PILOTFISH, Mesh, MeshOptions
from .plan import gateway_services, namespace_labels
from .state import State, loopback_alias_works, pid_alive
from .workloads import stamp_workdir, workloads


class UpError(Exception):
    """Why the mesh did not come up; each line names a file, resource or process."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


def read_config(paths: Iterable[str]) -> tuple[list[Resource], list[str]]:
    """Every resource of ``paths``, validated as istiod's API validates, each Deployment with its
    manifest's directory recorded (stamp_workdir); and the errors, one line each naming file:line,
    resource and field. SourceError when a path cannot be read."""
    errors: list[str] = []
    out: list[Resource] = []
    for doc in list(load_documents(paths)):
        if isinstance(doc, LoadError):
            errors.append(str(doc))
            continue
        if doc.data is None:
            continue
        stamp_workdir(doc.data, doc.file)
        try:
            resource = with_default_namespace(to_resource(doc))
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        errors += [doc.locate(resource.ref, e) for e in validate(resource).errors]
        out.append(resource)
    return out, errors


def load_config(paths: Iterable[str]) -> list[Resource]:
    """``up``'s files: every resource valid and every Deployment runnable, or UpError."""
    try:
        out, errors = read_config(paths)
    except SourceError as exc:
        raise UpError([str(exc)]) from None
    workloads(out, namespace_labels(out), errors)
    if errors:
        raise UpError(errors)
    return out


def take_mesh_config(state: State, path: str) -> None:
    """Check a MeshConfig file and keep it for istiod (it replaces any given before)."""
    from ..config.models.kube import load_mesh_config

    try:
        load_mesh_config(path)
        text = open(path).read()
    except (ConfigError, OSError) as exc:
        raise UpError([f"{path}: {exc}"]) from None
    state.create()
    state.mesh_config.write_text(text)


def store_config(state: State, resources: list[Resource], ingress_http_port: int) -> None:
    """Into the store: the mesh's gateway Services unless the store or the files have them, then
    the files' resources (validated already, so every one is taken)."""
    state.create()
    store = ConfigStore(state.applied_dir)
    given = {(r.kind, r.namespace, r.name) for r in resources}
    for svc in gateway_services(ingress_http_port):
        if (svc.kind, svc.namespace, svc.name) in given:
            continue
        if not any(r.name == svc.name for r in store.list(svc.kind, svc.namespace)):
            store.apply(svc)
    for r in resources:
        store.apply(r)


def running_pid(state: State) -> int | None:
    """The supervisor's pid when a mesh is up in this directory."""
    mesh = state.read_mesh()
    pid = mesh.get("pid") if mesh else None
    return pid if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid) else None


def shared_address(state: State, addresses: str) -> bool:
    """Whether instances share 127.0.0.1 (``--addresses``: ``loopback`` gives each its own
    address, ``shared`` gives each its own ports; ``auto`` takes loopback where the system routes
    all of 127.0.0.0/8 to lo, as Linux does)."""
    if addresses == "shared":
        return True
    works = loopback_alias_works(state.address(1))
    if addresses == "loopback" and not works:
        raise UpError([f"cannot bind {state.address(1)}: this system does not route 127.0.0.0/8 to the "
                       "loopback interface (use --addresses shared: one address, a port each)"])
    return not works


async def serve(state: State, options: MeshOptions, on_ready: Callable[[Mesh, list[str]], None],
                watch: Callable[[Mesh], asyncio.Future[None] | None] | None = None) -> int:
    """Run the mesh until SIGINT/SIGTERM; 0 after an orderly stop, 1 when it did not come up."""
    mesh = Mesh(state, options)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await mesh.start()
        except RuntimeError as exc:
            mesh.phase, mesh.failures = "failed", [str(exc)]
            mesh.write()
            on_ready(mesh, mesh.failures)
            return 1
        starting = asyncio.ensure_future(mesh.wait_ready())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.done():
            starting.cancel()
            return 0
        on_ready(mesh, starting.result())
        ui = watch(mesh) if watch is not None else None
        await stopping
        if ui is not None:
            ui.cancel()
        return 0
    finally:
        await mesh.stop()


def start_detached(state: State, argv: list[str], timeout: float) -> tuple[int, list[str], dict | None]:
    """Start ``pilotfish up`` (``argv``, without --detach) in the background and wait until it
    reports ready or failed: (exit status, failures, mesh.json)."""
    state.create()
    state.clear_mesh()
    with open(state.logs_dir / "mesh.log", "ab") as log:
        proc = subprocess.Popen([*PILOTFISH, *argv], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    deadline = time.monotonic() + timeout + 30
    while time.monotonic() < deadline:
        mesh = state.read_mesh()
        if mesh is not None and mesh.get("phase") in ("ready", "failed"):
            return (0 if mesh["phase"] == "ready" else 1), list(mesh.get("failures") or []), mesh
        if proc.poll() is not None:
            return 1, [f"the mesh exited with status {proc.returncode}; see {state.logs_dir / 'mesh.log'}"], None
        time.sleep(0.2)
    return 1, ["the mesh did not report ready in time"], state.read_mesh()


def down(state: State, timeout: float = 60.0) -> list[str]:
    """Stop the mesh: SIGTERM to its supervisor and wait; then any process a crashed one left
    (from mesh.json) gets SIGTERM, then SIGKILL. Returns what was done, one line each."""
    mesh = state.read_mesh()
    if mesh is None:
        return ["no mesh is up here"]
    done = []
    pid = mesh.get("pid")
    if isinstance(pid, int) and _ours(pid, state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        done.append(f"stopped the mesh (pid {pid})")
    stale = [p for p in _pids(mesh) if _ours(p, state)]
    for p in stale:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in stale) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in stale:
        if pid_alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    if stale:
        done.append(f"cleaned up {len(stale)} stale process(es): {', '.join(map(str, stale))}")
    state.clear_mesh()
    state.clear_pods()
    return done or ["the mesh was not running; cleared its state"]


def _ours(pid: int, state: State) -> bool:
    """A live process of this mesh: a pid mesh.json names may have been reused since a crash, so
    it must be a pilotfish process running in the mesh's directory."""
    if not pid_alive(pid):
        return False
    if not os.path.isdir("/proc/self"):  # (no procfs to ask: the pid is taken at its word)
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return b"pilotfish" in cmdline and cwd == str(state.root.parent)


def _pids(mesh: dict) -> list[int]:
    out = [mesh.get("istiod", {}).get("pid")]
    out += [w.get("pid") for w in mesh.get("workloads", []) + mesh.get("gateways", [])]
    return [p for p in out if isinstance(p, int)]
