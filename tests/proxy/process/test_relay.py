"""One ADS stream per proxy: worker 0 fetches, its siblings apply what it accepted (xds/relay.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pilotfish.proxy.process.relay import (
    RelayedConfig,
    RelayFollower,
    RelayHub,
    decode_section,
    encode_section,
    join_sections,
    split_sections,
)
from pilotfish.proxy.process.workers import MAX_FRAME, FrameDecoder, frame, read_frame
from pilotfish.proxy.testing import FakeTransport
from pilotfish.xds.errors import ResourceRejected
from pilotfish.xds.resources import Resources
from pilotfish.xds.testing import FakeAds
from pilotfish.xds.type_urls import CLUSTER, ENDPOINT, LISTENER, ROUTE, resource_name

from ..conftest import Backend, Client, sa, until
from .ads import ads_bootstrap, eds_cluster, endpoints, listener, route
from .helpers import PILOTFISH, children


# ---- frames and sections (no I/O) -------------------------------------------------------------
def test_frames_are_length_prefixed_and_bounded() -> None:
    dec = FrameDecoder()
    data = frame(b"one") + frame(b"") + frame(b"three")
    assert dec.feed(data[:5]) == []
    assert dec.feed(data[5:]) == [b"one", b"", b"three"]
    with pytest.raises(ValueError, match="over the 8-byte limit"):
        FrameDecoder(limit=8).feed(frame(b"x" * 9))
    with pytest.raises(ValueError, match="limit"):
        frame(b"x" * (MAX_FRAME + 1))


async def test_read_frame_stops_at_eof_and_rejects_cut_or_huge_frames() -> None:
    def reader(data: bytes) -> asyncio.StreamReader:
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        return r

    r = reader(frame(b"ab"))
    assert await read_frame(r) == b"ab"
    assert await read_frame(r) is None
    with pytest.raises(ConnectionError, match="inside a frame"):
        await read_frame(reader(frame(b"abc")[:-1]))
    with pytest.raises(ConnectionError, match="limit"):
        await read_frame(reader((1 << 31).to_bytes(4, "big")), limit=1024)


def test_section_round_trip_keeps_version_and_messages() -> None:
    msgs = {"b": eds_cluster("b"), "a": eds_cluster("a")}
    data = encode_section(CLUSTER, "7", msgs)
    assert data == encode_section(CLUSTER, "7", dict(reversed(msgs.items())))  # stable bytes
    type_url, version, got = decode_section(data)
    assert (type_url, version) == (CLUSTER, "7") and got == msgs
    _, _, eps = decode_section(encode_section(ENDPOINT, "1", {"a": endpoints("a", 80)}))
    assert list(eps) == ["a"]  # ClusterLoadAssignments are named by cluster_name
    parts = [b"x", b"", b"yz"]
    assert split_sections(join_sections(parts)) == parts
    with pytest.raises(ValueError):
        split_sections(join_sections(parts)[:-1])


# ---- the hub, with a transport that records writes -------------------------------------------
def frames(t: FakeTransport) -> list[list[tuple[str, str, dict[str, Any]]]]:
    """The relay frames written to ``t`` (one per write), each as its decoded sections."""
    assert t.write_buffer_limits == (0, None)  # the hub writes without buffering limits of its own
    return [[decode_section(s) for s in split_sections(payload)]
            for data in t.writes for payload in FrameDecoder().feed(data)]


def accept(res: Resources, type_url: str, version: str, *msgs: Any) -> Resources:
    return res.with_response(type_url, version, {resource_name(type_url, m): m for m in msgs}, 0.0)


def test_hub_waits_for_ready_then_sends_only_what_changed_and_coalesces_a_slow_sibling() -> None:
    hub = RelayHub()
    res = accept(Resources(), CLUSTER, "1", eds_cluster("web"))
    hub.publish(res)
    t = FakeTransport()
    sub = hub.attach(t)  # type: ignore[arg-type]
    assert frames(t) == []  # worker 0 is not warm yet
    hub.set_ready()
    assert [[(s[0], s[1]) for s in f] for f in frames(t)] == [[(CLUSTER, "1")]]
    res = accept(res, ENDPOINT, "1", endpoints("web", 80))
    hub.publish(res)
    assert [(s[0], s[1]) for s in frames(t)[-1]] == [(ENDPOINT, "1")]  # the cluster section is unchanged
    hub.publish(res)  # the same snapshot again: nothing to send
    assert len(frames(t)) == 2

    sub.pause_writing()  # the sibling is not reading: versions 2..4 pile up as one "dirty" mark
    for v in ("2", "3", "4"):
        res = accept(res, ENDPOINT, v, endpoints("web", 80, int(v)))
        hub.publish(res)
    assert len(frames(t)) == 2
    sub.resume_writing()
    assert len(frames(t)) == 3 and [(s[0], s[1]) for s in frames(t)[-1]] == [(ENDPOINT, "4")]

    late = FakeTransport()  # a sibling (re)started now gets everything at once, in warming order
    hub.attach(late)  # type: ignore[arg-type]
    assert [[(s[0], s[1]) for s in f] for f in frames(late)] == [[(CLUSTER, "1"), (ENDPOINT, "4")]]
    sub.connection_lost()
    assert len(hub.subscribers) == 1


def test_hub_greets_with_an_empty_frame_when_nothing_was_accepted() -> None:
    hub = RelayHub()
    hub.publish(Resources())
    hub.set_ready()  # initial_fetch_timeout passed without config: siblings may start anyway
    t = FakeTransport()
    hub.attach(t)  # type: ignore[arg-type]
    assert frames(t) == [[]]


class FakeConfig:
    """Records updates as DynamicConfig would receive them."""

    def __init__(self, delay: float = 0.0, reject: str | None = None) -> None:
        self.resources = Resources()
        self.updates: list[tuple[str, str, list[str]]] = []
        self.delay = delay
        self.reject = reject

    def wanted(self, type_url: str) -> frozenset[str]:
        return frozenset()

    def is_warm(self, type_url: str) -> bool:
        return True

    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if type_url == self.reject:
            raise ResourceRejected("listener: cannot bind")
        self.updates.append((type_url, version, sorted(messages)))
        self.resources = self.resources.with_response(type_url, version, messages, 0.0)


class PartialConfig(FakeConfig):
    """Accepts the resources whose name does not start with "bad", then NACKs the rest."""

    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None:
        good = {n: m for n, m in messages.items() if not n.startswith("bad")}
        await super().update(type_url, version, good)
        if len(good) < len(messages):
            raise ResourceRejected("Cluster[bad]: bad resources")


async def test_worker_0_relays_its_accepted_state_not_the_response() -> None:
    hub = RelayHub()
    inner = PartialConfig()
    config = RelayedConfig(inner, hub)
    hub.set_ready()
    t = FakeTransport()
    hub.attach(t)  # type: ignore[arg-type]
    assert frames(t) == [[]]
    await config.update(CLUSTER, "1", {"web": eds_cluster("web")})
    assert [(s[0], s[1], sorted(s[2])) for s in frames(t)[-1]] == [(CLUSTER, "1", ["web"])]
    with pytest.raises(ResourceRejected):  # a partly accepted response: only the good part travels
        await config.update(CLUSTER, "2", {"web": eds_cluster("web"), "new": eds_cluster("new"),
                                           "bad": eds_cluster("bad")})
    assert [(s[0], s[1], sorted(s[2])) for s in frames(t)[-1]] == [(CLUSTER, "2", ["new", "web"])]
    inner.reject = ROUTE
    with pytest.raises(ResourceRejected):  # a rejected response changes nothing: nothing is sent
        await config.update(ROUTE, "1", {"r1": route("r1", "web")})
    assert len(frames(t)) == 3
    assert config.wanted(ROUTE) == frozenset() and config.is_warm(ROUTE) and config.delay == 0.0


# ---- hub and follower over a real unix socket -----------------------------------------------
class _Conn(asyncio.Protocol):
    """workers._ControlConnection's relay part, for a hub served outside a worker."""

    def __init__(self, hub: RelayHub) -> None:
        self.hub = hub
        self.dec = FrameDecoder()
        self.peer: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None and self.dec.feed(data) == [b"xds"]:
            self.peer = self.hub.attach(self.transport)

    def pause_writing(self) -> None:
        self.peer.pause_writing()

    def resume_writing(self) -> None:
        self.peer.resume_writing()

    def connection_lost(self, exc: Any) -> None:
        if self.peer is not None:
            self.peer.connection_lost()


@contextlib.asynccontextmanager
async def hub_server(hub: RelayHub, sock: socket.socket) -> AsyncIterator[asyncio.base_events.Server]:
    # a dup, as each worker has its own descriptor: closing it leaves the socket listening
    server = await asyncio.get_running_loop().create_unix_server(lambda: _Conn(hub), sock=sock.dup())
    try:
        yield server
    finally:
        server.close()
        hub.close()


@contextlib.asynccontextmanager
async def follower(path: str, config: FakeConfig, timeout: float = 5.0) -> AsyncIterator[RelayFollower]:
    f = RelayFollower(path, config, timeout, random.Random(1))
    f.start()
    try:
        yield f
    finally:
        await f.stop()


@pytest.fixture
def control_socket() -> Any:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "worker-0.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(16)
        yield path, s
        s.close()


async def test_follower_waits_for_worker_0_then_applies_in_warming_order(
        control_socket: Any) -> None:
    path, sock = control_socket
    hub = RelayHub()
    res = Resources()
    for t, msg in ((LISTENER, listener("in", "r1")), (ROUTE, route("r1", "web")),
                   (CLUSTER, eds_cluster("web")), (ENDPOINT, endpoints("web", 80))):
        res = accept(res, t, "1", msg)
    hub.publish(res)
    config = FakeConfig()
    async with hub_server(hub, sock), follower(path, config) as f:
        await asyncio.sleep(0.05)
        assert not f.ready.is_set()  # worker 0 is still warming: the sibling's listeners wait
        hub.set_ready()
        await asyncio.wait_for(f.ready.wait(), 2)
        assert [u[:2] for u in config.updates] == [(CLUSTER, "1"), (ENDPOINT, "1"), (LISTENER, "1"), (ROUTE, "1")]
        res = accept(res, ROUTE, "2", route("r1", "other"))
        hub.publish(res)
        await until(lambda: len(config.updates) == 5)
        assert config.updates[-1] == (ROUTE, "2", ["r1"])


async def test_sibling_keeps_its_config_across_a_worker_0_restart_and_applies_only_changes(
        control_socket: Any) -> None:
    """The connection to a restarting worker 0 waits in the backlog the supervisor holds."""
    path, sock = control_socket
    res = accept(accept(Resources(), CLUSTER, "1", eds_cluster("web")), ENDPOINT, "1", endpoints("web", 80))
    config = FakeConfig()
    async with follower(path, config) as f:
        hub = RelayHub()
        hub.publish(res)
        async with hub_server(hub, sock):
            hub.set_ready()
            await asyncio.wait_for(f.ready.wait(), 2)
        assert len(config.updates) == 2
        # the new worker 0 accepted the same clusters and newer endpoints
        hub2 = RelayHub()
        hub2.publish(accept(res, ENDPOINT, "2", endpoints("web", 81)))
        async with hub_server(hub2, sock):
            hub2.set_ready()
            await until(lambda: len(config.updates) == 3)
        assert config.updates[-1][:2] == (ENDPOINT, "2")


async def test_a_slow_sibling_does_not_hold_worker_0_and_lands_on_the_latest(control_socket: Any) -> None:
    path, sock = control_socket
    hub = RelayHub()
    res = accept(Resources(), CLUSTER, "0", eds_cluster("web"))
    hub.publish(res)
    config = FakeConfig(delay=0.2)  # each apply takes 200 ms
    async with hub_server(hub, sock), follower(path, config) as f:
        hub.set_ready()
        await asyncio.wait_for(f.ready.wait(), 2)
        big = [eds_cluster(f"c{i}-" + "x" * 200) for i in range(2000)]  # ~0.5 MB per version
        start = time.monotonic()
        for v in range(1, 30):
            res = accept(res, CLUSTER, str(v), *big[: 1000 + v])
            hub.publish(res)
        assert time.monotonic() - start < 1.0  # publishing never waited for the sibling
        await until(lambda: config.updates[-1][1] == "29", timeout=5)
        assert len(config.updates) < 10  # intermediate versions were skipped, not queued


async def test_a_local_failure_is_logged_and_retried_with_the_next_frame(control_socket: Any,
                                                                       caplog: Any) -> None:
    path, sock = control_socket
    hub = RelayHub()
    res = accept(Resources(), LISTENER, "1", listener("in", "r1"))
    hub.publish(res)
    config = FakeConfig(reject=LISTENER)
    async with hub_server(hub, sock), follower(path, config) as f:
        hub.set_ready()
        await asyncio.wait_for(f.ready.wait(), 2)
        assert f.rejected == 1 and "cannot apply Listener version 1: listener: cannot bind" in caplog.text
        config.reject = None
        hub.publish(accept(res, CLUSTER, "1", eds_cluster("web")))
        await until(lambda: len(config.updates) == 2)
        assert [u[:2] for u in config.updates] == [(CLUSTER, "1"), (LISTENER, "1")]


async def test_follower_starts_anyway_after_the_initial_fetch_timeout(control_socket: Any) -> None:
    path, _ = control_socket  # nobody accepts: worker 0 is not there
    async with follower(path, FakeConfig(), timeout=0.2) as f:
        await asyncio.wait_for(f.ready.wait(), 2)


# ---- the real thing: pilotfish proxy --concurrency 2 against a fake ADS server -------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def _tcp() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every IPv4 TCP socket."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        rows.append((int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16), f[3], int(f[9])))
    return rows


def owner(pids: set[int], local: int, remote: int | None = None, state: str = "01") -> int | None:
    """The process holding the TCP socket (local port, remote port) — "01" established, "0A" listen."""
    inodes = {p: _socket_inodes(p) for p in pids}
    for lport, rport, st, inode in _tcp():
        if lport == local and st == state and (remote is None or rport == remote):
            for pid, have in inodes.items():
                if inode in have:
                    return pid
    return None


async def served(port: int, pids: set[int], n: int = 16) -> tuple[set[str], set[int]]:
    """n requests over fresh connections: which backends answered, which workers accepted."""
    clients = []
    try:
        for _ in range(n):
            clients.append(await Client(port).connect())
        words = {(await c.request()).body.split(b" ")[0].decode() for c in clients}
        by = {owner(pids, port, c.writer.get_extra_info("sockname")[1]) for c in clients}  # type: ignore[union-attr]
        return words, by
    finally:
        for c in clients:
            await c.close()


async def until_served(port: int, word: str, pids: set[int], timeout: float = 5.0,
                       any_owner: bool = False) -> None:
    """Every worker serves ``word`` (the backend the config routes to) on ``port`` (or, with
    ``any_owner``, every connection is served ``word``, whichever process took it)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await served(port, pids)
        except OSError as exc:
            last = exc
        else:
            if last == ({word}, pids) or any_owner and last[0] == {word}:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"want {word!r} from {pids}, got {last}")


class Proxy:
    def __init__(self, doc: dict[str, Any], tmp: Path) -> None:
        path = tmp / "envoy.yaml"
        path.write_text(yaml.safe_dump(doc))
        self.log_path = tmp / "proxy.log"
        self.log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen([*PILOTFISH, "proxy", "-c", str(path), "--concurrency", "2",
                                      "--drain-time-s", "0.2"], stderr=self.log_file)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    async def wait_log(self, needle: str, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.log.count(needle) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} x{count} not in log:\n{self.log}")
            await asyncio.sleep(0.05)

    async def workers(self, exclude: int | None = None) -> set[int]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = children(self.proc.pid)
            if len(now) == 2 and exclude not in now:
                return now
            await asyncio.sleep(0.05)
        raise AssertionError(f"workers: {children(self.proc.pid)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                for pid in children(self.proc.pid):  # still its children: the pids are theirs
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def serve(ads: FakeAds, backend_port: int, port: int) -> None:
    ads.set(CLUSTER, eds_cluster("web"), push=False)
    ads.set(ENDPOINT, endpoints("web", backend_port), push=False)
    ads.set(LISTENER, listener("in", "r1", address=sa(port)), push=False)
    ads.set(ROUTE, route("r1", "web"), push=False)


async def test_one_ads_stream_and_both_workers_apply_every_update(
        ads: FakeAds, backend: Backend, backend_b: Backend, tmp_path: Path) -> None:
    port = free_port()
    serve(ads, backend.port, port)
    proxy = Proxy(ads_bootstrap(ads.port), tmp_path)
    try:
        await proxy.wait_log("admin on port")
        pids = await proxy.workers()
        await until_served(port, "a", pids)
        assert ads.opened == 1 and ads.active == 1
        # CDS + EDS + RDS: the route moves to a new cluster on another backend
        ads.set(ENDPOINT, endpoints("web", backend.port), endpoints("web-b", backend_b.port), push=False)
        ads.set(CLUSTER, eds_cluster("web"), eds_cluster("web-b"))
        await ads.wait_ack(ENDPOINT, "2")
        ads.set(ROUTE, route("r1", "web-b"))
        await until_served(port, "b", pids)
        # LDS: a second listener appears on every worker
        port2 = free_port()
        ads.set(LISTENER, listener("in", "r1", address=sa(port)), listener("in2", "r1", address=sa(port2)))
        await until_served(port2, "b", pids)
        assert ads.opened == 1 and ads.active == 1  # still one client for the whole proxy
        assert {r.node.id for r in ads.requests if r.HasField("node")} == {
            "sidecar~127.0.0.1~app.default~default.svc.cluster.local"}
    finally:
        proxy.stop()


async def test_restarted_workers_serve_the_current_config_with_one_stream(
        ads: FakeAds, backend: Backend, backend_b: Backend, tmp_path: Path) -> None:
    port = free_port()
    serve(ads, backend.port, port)
    proxy = Proxy(ads_bootstrap(ads.port), tmp_path)
    try:
        await proxy.wait_log("admin on port")
        pids = await proxy.workers()
        admin = int(proxy.log.split("admin on port ")[1].split()[0])
        await until_served(port, "a", pids)
        leader = owner(pids, admin, state="0A")
        assert leader in pids
        (sibling,) = pids - {leader}
        ads.set(ENDPOINT, endpoints("web", backend_b.port))  # a config the bootstrap never had
        await until_served(port, "b", pids)

        os.kill(sibling, signal.SIGKILL)  # a restarted sibling asks worker 0, not the control plane
        await proxy.wait_log("starting a new one")
        pids = await proxy.workers(exclude=sibling)
        await until_served(port, "b", pids)
        assert ads.opened == 1 and ads.active == 1

        os.kill(leader, signal.SIGKILL)  # the sibling keeps serving; the new worker 0 reconnects
        await until_served(port, "b", pids - {leader}, any_owner=True)  # (a new worker 0 may serve too)
        pids = await proxy.workers(exclude=leader)
        await until_served(port, "b", pids)
        await until(lambda: ads.active == 1)
        assert ads.opened == 2  # one stream at a time: the new worker 0's
        ads.set(ENDPOINT, endpoints("web", backend.port))  # and it relays updates again
        await until_served(port, "a", pids)
    finally:
        proxy.stop()
