"""``--concurrency N``: a supervisor and N worker processes sharing the listeners (SO_REUSEPORT).

Envoy runs N worker threads in one process; Python scales across cores with processes instead.
The supervisor compiles the config once, reserves every listener and the admin port (a socket
bound with SO_REUSEPORT but never listening keeps the port, receives no connections, and lets a
``port_value: 0`` resolve to one port for all), then forks the workers from a state with no
event loop. Each worker binds its own SO_REUSEPORT socket per listener, so the kernel spreads
connections across them. Worker 0 also serves the admin port.

The supervisor does nothing but wait: a worker that dies is reported in the log and forked
again (from the pristine config); SIGTERM/SIGINT stop every worker; SIGUSR1 (sent by worker 0's
``/drain_listeners``) drains every worker.

Each worker has a private unix control socket (in a 0700 directory, bound by the supervisor
before forking, so a restarted worker inherits it and a client that connects while the worker
is being restarted waits in the backlog instead of failing). Messages on it are frames: a 4-byte
big-endian length, then that many bytes, at most ``MAX_FRAME``. A client's first frame is its
command: ``stats`` is answered with one frame holding the worker's stats snapshot (JSON) and
worker 0 sums them before rendering /stats; ``xds`` (worker 0 only) subscribes the caller to the
accepted xDS config, so that the group has one ADS stream (relay.py).

A forked worker is handed its ``WorkerContext`` (``run_worker(ctx)``); what runs inside it is
assembled in assemble.py. Nothing here imports the server or the admin.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("pilotfish.proxy")

_RESTART_WINDOW = 10.0  # seconds; more than _RESTART_BURST deaths in it slow restarts down
_RESTART_BURST = 5

#: Largest control-socket frame (bytes): far above any accepted config, and a corrupt length
#: prefix can never make a reader allocate more.
MAX_FRAME = 256 << 20
_LENGTH = struct.Struct("!I")


@dataclass
class WorkerContext:
    """What a worker process knows about its group, handed to it when it is forked."""

    index: int
    count: int
    control_paths: list[str]
    control_socket: socket.socket
    supervisor_pid: int
    draining: bool = False

    @property
    def siblings(self) -> list[str]:
        return [p for i, p in enumerate(self.control_paths) if i != self.index]

    def stop_group(self) -> None:
        """Ask the supervisor to stop every worker now, without a drain period
        (``/quitquitquit``: SIGQUIT, where SIGTERM drains)."""
        os.kill(self.supervisor_pid, signal.SIGQUIT)

    def drain_group(self) -> None:
        """Ask the supervisor to drain every worker (``/drain_listeners``)."""
        os.kill(self.supervisor_pid, signal.SIGUSR1)


def reserve_ports(compiled: Any) -> list[socket.socket]:
    """Bind (never listen) every listener and the admin address with SO_REUSEPORT; fix ports."""
    held = []
    targets = list(compiled.runtime.listeners)
    if compiled.runtime.admin is not None:
        targets.append(compiled.runtime.admin)
    for cfg in targets:
        family = socket.AF_INET6 if ":" in cfg.address else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((cfg.address, cfg.port))
        cfg.port = s.getsockname()[1]
        if hasattr(cfg, "reuse_port"):
            cfg.reuse_port = True  # each worker needs its own socket on the shared port
        held.append(s)
    return held


@dataclass
class Supervisor:
    """Fork, watch and restart workers. ``run_worker(ctx)`` runs in the child and returns its
    exit code; ``clock`` (monotonic) paces restarts."""

    count: int
    run_worker: Callable[[WorkerContext], int]
    clock: Callable[[], float] = time.monotonic
    pids: dict[int, int] = field(default_factory=dict)  # pid → worker index
    stopping: bool = False
    draining: bool = False
    deaths: list[float] = field(default_factory=list)
    restarts: int = 0

    def run(self, compiled: Any) -> int:
        rundir = tempfile.mkdtemp(prefix="pilotfish-workers-")
        controls, paths = [], []
        held: list[socket.socket] = []
        try:
            for i in range(self.count):
                path = os.path.join(rundir, f"worker-{i}.sock")
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(path)
                s.listen(max(16, 2 * self.count))  # every sibling may be waiting on worker 0
                controls.append(s)
                paths.append(path)
            held = reserve_ports(compiled)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_stop)
            signal.signal(signal.SIGUSR1, self._on_drain)
            signal.signal(signal.SIGQUIT, self._on_quit)
            for i in range(self.count):
                self._spawn(i, controls, paths)
            while self.pids:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                index = self.pids.pop(pid, None)
                if index is None:
                    continue
                if self.stopping or self.draining:
                    continue
                log.warning("worker %d (pid %d) %s; starting a new one", index, pid, describe_exit(status))
                self._pace()
                if not self.stopping:
                    self._spawn(index, controls, paths)
                    self.restarts += 1
            return 0
        finally:
            for s in held + controls:
                s.close()
            shutil.rmtree(rundir, ignore_errors=True)

    def _spawn(self, index: int, controls: list[socket.socket], paths: list[str]) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGQUIT):
                    signal.signal(sig, signal.SIG_DFL)
                for i, s in enumerate(controls):
                    if i != index:
                        s.close()
                ctx = WorkerContext(index, self.count, paths, controls[index], os.getppid())
                code = self.run_worker(ctx)
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self.pids[pid] = index
        log.info("worker %d started (pid %d)", index, pid)

    def _pace(self) -> None:
        now = self.clock()
        self.deaths = [t for t in self.deaths if now - t < _RESTART_WINDOW] + [now]
        if len(self.deaths) > _RESTART_BURST:
            time.sleep(1.0)  # a worker that dies at once must not turn into a fork loop

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
        self._forward(signal.SIGTERM)

    def _on_quit(self, signum: int, frame: Any) -> None:
        self.stopping = True
        self._forward(signal.SIGQUIT)

    def _on_drain(self, signum: int, frame: Any) -> None:
        self.draining = True
        self._forward(signal.SIGUSR1)

    def _forward(self, sig: int) -> None:
        for pid in list(self.pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by signal {sig} ({name})"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


# ---- control-socket frames ------------------------------------------------------------------
def frame(payload: bytes) -> bytes:
    """``payload`` with its length prefix; ValueError when it is larger than MAX_FRAME."""
    if len(payload) > MAX_FRAME:
        raise ValueError(f"a control frame of {len(payload)} bytes is over the {MAX_FRAME}-byte limit")
    return _LENGTH.pack(len(payload)) + payload


class FrameDecoder:
    """Bytes in, whole frames out (no I/O). A length over the limit raises ValueError."""

    __slots__ = ("buf", "limit")

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self.buf = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while len(self.buf) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self.buf)
            if size > self.limit:
                raise ValueError(f"a control frame of {size} bytes is over the {self.limit}-byte limit")
            end = _LENGTH.size + size
            if len(self.buf) < end:
                break
            out.append(bytes(self.buf[_LENGTH.size:end]))
            del self.buf[:end]
        return out


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> bytes | None:
    """The next frame; None at a clean end of stream. A cut or oversized frame is ConnectionError."""
    try:
        head = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ConnectionError("control connection closed inside a frame") from None
    (size,) = _LENGTH.unpack(head)
    if size > limit:
        raise ConnectionError(f"a control frame of {size} bytes is over the {limit}-byte limit")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ConnectionError("control connection closed inside a frame") from None


# ---- inside a worker ------------------------------------------------------------------------
class _ControlConnection(asyncio.Protocol):
    """One client of this worker's control socket; its first frame is the command.

    ``stats`` → this worker's stats snapshot as JSON in one frame, then close. ``xds`` → the
    connection is handed to worker 0's relay hub, which writes config frames to it from then on
    (its pause/resume callbacks are how a slow sibling is noticed without blocking anyone).
    """

    def __init__(self, stats: Any, relay: Any) -> None:
        self.stats = stats
        self.relay = relay
        self.decoder = FrameDecoder(limit=64)  # commands are short
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None  # the relay subscriber this connection became

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.peer is not None or self.transport is None:
            return  # a subscriber sends nothing after its command
        try:
            frames = self.decoder.feed(data)
        except ValueError:
            self.transport.close()
            return
        if not frames:
            return
        command = frames[0]
        if command == b"stats":
            self.transport.write(frame(json.dumps(self.stats.snapshot()).encode()))
            self.transport.close()
        elif command == b"xds" and self.relay is not None:
            self.peer = self.relay.attach(self.transport)
        else:
            self.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_writing()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.connection_lost()


async def serve_control(ctx: WorkerContext, stats: Any, relay: Any = None) -> asyncio.base_events.Server:
    """Answer this worker's control socket; ``relay`` is worker 0's relay.RelayHub (or None)."""
    loop = asyncio.get_running_loop()
    return await loop.create_unix_server(lambda: _ControlConnection(stats, relay),
                                         sock=ctx.control_socket)


async def sibling_snapshots(ctx: WorkerContext, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The other workers' stats snapshots; a worker that does not answer in time is left out."""

    async def one(path: str) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
                try:
                    writer.write(frame(b"stats"))
                    data = await read_frame(reader)
                finally:
                    writer.close()
                return json.loads(data) if data else None
        except (OSError, TimeoutError, ValueError):
            return None

    found = await asyncio.gather(*(one(p) for p in ctx.siblings))
    return [s for s in found if s is not None]
