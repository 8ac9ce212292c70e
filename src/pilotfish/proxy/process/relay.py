"""One ADS stream per proxy: worker 0 fetches the config, its siblings apply what it accepted.

Envoy has one xDS stream per proxy (on the main thread) and every worker thread runs the same
accepted config. With ``--concurrency N`` our workers are processes, so the same shape is built
over their control sockets (workers.py): worker 0 runs the ADS client and a ``RelayHub``; every
other worker runs a ``RelayFollower`` instead of an ADS client, subscribed to worker 0. The
control plane sees one client per node (one ACK/NACK state, one push per change) and workers
never disagree for longer than a relay hop. Siblings subscribe (rather than worker 0 pushing to
their sockets) so that one long-lived connection is at once the "give me the current config"
request of a starting worker, the update channel, and how either side learns the other died.

What travels is the *accepted* state, never the raw response (a response may be accepted only
in part): after every update worker 0 applies, the hub sends each subscriber the sections that
changed since it last wrote to that subscriber — one ``DiscoveryResponse`` per type URL holding
the type's whole accepted set and version (each resource as protobuf bytes). A follower applies
changed sections in warming order (CDS, EDS, LDS, RDS) through ``DynamicConfig.update``, the same
compile path worker 0 used, and skips sections identical to the ones it last applied. Worker 0
accepted them, so only a local failure (a bind error) can make one fail there: it is logged and
tried again with the next frame.

* Init: a follower's listeners wait (``ready``) for its first frame, and worker 0 sends nothing
  until its own ADS client is ready (Envoy's init: listeners accept once the config is warm). A
  worker that is restarted therefore serves the current config from its first connection. Like
  Envoy's ``initial_fetch_timeout``, a follower that hears nothing for that long starts anyway.
* A slow or dead sibling never blocks worker 0: writes go to the transport without awaiting, a
  subscriber holds at most one unsent frame (a write buffer limit of 0 pauses it as soon as
  anything is queued), and while paused only a "dirty" mark is kept; when the frame drains, the
  sections changed meanwhile go out at once. A sibling that fell behind skips the intermediate
  states and lands on the latest, as a state-of-the-world ADS client would.
* When worker 0 dies, siblings keep their last config and reconnect; the connection waits in the
  control socket's backlog (the supervisor holds it) until the new worker 0 has fetched its own
  config from the control plane and sends it. Sections equal to what a sibling runs are skipped.

Frames are bounded (workers.MAX_FRAME): a snapshot too large for one is logged and not relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
from collections.abc import Mapping
from typing import Any, Protocol

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2

from ...xds.backoff import JitteredExponentialBackOff
from ...xds.errors import ResourceRejected
from ...xds.type_urls import CLUSTER, ENDPOINT, KIND, LISTENER, ORDER, ROUTE
from .workers import frame, read_frame

log = logging.getLogger("pilotfish.proxy.xds")

_MESSAGE = {LISTENER: listener_pb2.Listener, ROUTE: route_pb2.RouteConfiguration,
            CLUSTER: cluster_pb2.Cluster, ENDPOINT: endpoint_pb2.ClusterLoadAssignment}
_LENGTH = struct.Struct("!I")
COMMAND = b"xds"


class ConfigTarget(Protocol):
    """What both sides drive: DynamicConfig in the proxy, a fake in tests."""

    resources: Any  # pilotfish.xds.resources.Resources, the accepted snapshot

    def wanted(self, type_url: str) -> frozenset[str]: ...
    def is_warm(self, type_url: str) -> bool: ...
    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None: ...


# ---- the snapshot on the wire ---------------------------------------------------------------
def encode_section(type_url: str, version: str, messages: Mapping[str, Any]) -> bytes:
    """One type's accepted set as a serialized DiscoveryResponse (names sorted: stable bytes)."""
    resp = discovery_pb2.DiscoveryResponse(type_url=type_url, version_info=version)
    for name in sorted(messages):
        resp.resources.add(type_url=type_url, value=messages[name].SerializeToString())
    return resp.SerializeToString()


def join_sections(sections: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(s)) + s for s in sections)


def split_sections(payload: bytes) -> list[bytes]:
    """The sections of one frame; ValueError when the frame is malformed."""
    out, pos = [], 0
    while pos < len(payload):
        if pos + _LENGTH.size > len(payload):
            raise ValueError("truncated section length")
        (size,) = _LENGTH.unpack_from(payload, pos)
        pos += _LENGTH.size
        if pos + size > len(payload):
            raise ValueError("truncated section")
        out.append(payload[pos:pos + size])
        pos += size
    return out


def decode_section(data: bytes) -> tuple[str, str, dict[str, Any]]:
    """(type_url, version, messages by name) of one section."""
    resp = discovery_pb2.DiscoveryResponse.FromString(data)
    cls = _MESSAGE.get(resp.type_url)
    if cls is None:
        raise ValueError(f"unsupported type {resp.type_url!r}")
    messages: dict[str, Any] = {}
    for item in resp.resources:
        msg = cls.FromString(item.value)
        messages[msg.cluster_name if resp.type_url == ENDPOINT else msg.name] = msg
    return resp.type_url, resp.version_info, messages


# ---- worker 0 -------------------------------------------------------------------------------
class RelayHub:
    """Worker 0's side: the accepted snapshot, its encoded sections, and the subscribed siblings."""

    def __init__(self) -> None:
        self.resources: Any = None
        self.ready = False  # nothing is sent before worker 0's own ADS client is ready
        self.subscribers: set[Subscriber] = set()
        self._sections: dict[str, tuple[Any, str, bytes]] = {}  # type → (mapping, version, bytes)
        self._task: asyncio.Task[None] | None = None

    def follow(self, ready: asyncio.Event) -> None:
        """Start relaying once ``ready`` (the ADS client's initial fetch) is set."""
        async def wait() -> None:
            await ready.wait()
            self.set_ready()

        self._task = asyncio.get_running_loop().create_task(wait())

    def set_ready(self) -> None:
        self.ready = True
        for sub in list(self.subscribers):
            sub.kick()

    def publish(self, resources: Any) -> None:
        """A new accepted snapshot (called after every update, accepted or not)."""
        if resources is self.resources:
            return
        self.resources = resources
        if self.ready:
            for sub in list(self.subscribers):
                sub.kick()

    def attach(self, transport: asyncio.WriteTransport) -> Subscriber:
        """A sibling subscribed on its control connection (workers._ControlConnection)."""
        transport.set_write_buffer_limits(high=0)  # pause as soon as a frame is left unsent
        sub = Subscriber(self, transport)
        self.subscribers.add(sub)
        sub.kick()
        return sub

    def sections(self) -> dict[str, bytes]:
        """The encoded accepted set of every type accepted at least once, re-encoded on change."""
        res = self.resources
        if res is None:
            return {}
        out = {}
        for type_url in ORDER:
            version = res.versions.get(type_url)
            if version is None:
                continue
            mapping = res.of(type_url)
            cached = self._sections.get(type_url)
            if cached is None or cached[0] is not mapping or cached[1] != version:
                data = encode_section(type_url, version, {n: e.message for n, e in mapping.items()})
                cached = self._sections[type_url] = (mapping, version, data)
            out[type_url] = cached[2]
        return out

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for sub in list(self.subscribers):
            sub.transport.close()
        self.subscribers.clear()


class Subscriber:
    """One sibling's connection: what was last written to it, and whether it is keeping up."""

    __slots__ = ("dirty", "greeted", "hub", "paused", "sent", "transport")

    def __init__(self, hub: RelayHub, transport: asyncio.WriteTransport) -> None:
        self.hub = hub
        self.transport = transport
        self.sent: dict[str, bytes] = {}
        self.greeted = False  # the first frame (possibly empty) tells the sibling worker 0 is ready
        self.paused = False
        self.dirty = False

    def kick(self) -> None:
        """Send what changed, now if the last frame has drained, else as soon as it does."""
        if not self.hub.ready or self.transport.is_closing():
            return
        if self.paused:
            self.dirty = True
            return
        current = self.hub.sections()
        changed = {t: data for t, data in current.items() if self.sent.get(t) != data}
        if not changed and self.greeted:
            return
        try:
            out = frame(join_sections([changed[t] for t in ORDER if t in changed]))
        except ValueError as exc:
            log.error("xDS relay: cannot send the accepted config to a sibling worker: %s", exc)
            return
        self.sent.update(changed)
        self.greeted = True
        self.transport.write(out)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.dirty:
            self.dirty = False
            self.kick()

    def connection_lost(self) -> None:
        self.hub.subscribers.discard(self)


class RelayedConfig:
    """Worker 0's config target: DynamicConfig, publishing its accepted state after each update."""

    def __init__(self, config: ConfigTarget, hub: RelayHub) -> None:
        self.config = config
        self.hub = hub
        hub.publish(config.resources)

    def wanted(self, type_url: str) -> frozenset[str]:
        return self.config.wanted(type_url)

    def is_warm(self, type_url: str) -> bool:
        return self.config.is_warm(type_url)

    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None:
        try:
            await self.config.update(type_url, version, messages)
        finally:  # a rejected (or partly accepted) response may still have changed something
            self.hub.publish(self.config.resources)

    def __getattr__(self, name: str) -> Any:  # anything else DynamicConfig offers
        return getattr(self.config, name)


# ---- the other workers ----------------------------------------------------------------------
class RelayFollower:
    """A sibling's stand-in for the ADS client: same ``ready``/``start``/``stop``, no gRPC."""

    def __init__(self, path: str, config: ConfigTarget, initial_fetch_timeout: float,
                 rng: random.Random) -> None:
        self.path = path  # worker 0's control socket
        self.config = config
        self.initial_fetch_timeout = initial_fetch_timeout
        self.backoff = JitteredExponentialBackOff(50, 1000, rng)
        self.ready = asyncio.Event()
        self.received: dict[str, bytes] = {}  # type → the latest section from worker 0
        self.applied: dict[str, bytes] = {}  # type → the section last applied
        self.frames = 0
        self.accepted = 0
        self.rejected = 0
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.initial_fetch_timeout > 0:
            self._timer = loop.call_later(self.initial_fetch_timeout, self._on_initial_timeout)
        self._task = loop.create_task(self._run())

    async def stop(self) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task  # _run handles every other error itself

    def _on_initial_timeout(self) -> None:
        if not self.ready.is_set():
            log.warning("xDS relay: no config from worker 0 after %.1fs; starting without it",
                        self.initial_fetch_timeout)
            self.ready.set()

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (OSError, ValueError) as exc:
                log.warning("xDS relay from worker 0 failed: %s; keeping the current config", exc)
            else:
                log.info("xDS relay: worker 0 went away; keeping the current config until it is back")
            await asyncio.sleep(self.backoff.next_backoff())

    async def _follow(self) -> None:
        reader, writer = await asyncio.open_unix_connection(self.path)
        try:
            writer.write(frame(COMMAND))
            while True:
                payload = await read_frame(reader)
                if payload is None:
                    return
                self.backoff.reset()
                await self.apply(payload)
        finally:
            writer.close()

    async def apply(self, payload: bytes) -> None:
        """Apply what differs from the running config, in warming order; then the worker may serve.

        A section that failed to apply stays pending and is tried again with the next frame.
        """
        self.frames += 1
        for data in split_sections(payload):
            self.received[decode_section(data)[0]] = data
        for type_url in ORDER:
            data = self.received.get(type_url)
            if data is None or self.applied.get(type_url) == data:
                continue
            _, version, messages = decode_section(data)
            try:
                await self.config.update(type_url, version, messages)
            except ResourceRejected as exc:  # worker 0 accepted it: only a local failure (bind)
                self.rejected += 1
                log.error("xDS relay: cannot apply %s version %s: %s", KIND[type_url], version, exc)
                continue
            except Exception:
                self.rejected += 1
                log.exception("xDS relay: cannot apply %s version %s", KIND[type_url], version)
                continue
            self.applied[type_url] = data
            self.accepted += 1
            log.debug("xDS relay: applied %s version %s (%d resources)", KIND[type_url], version,
                      len(messages))
        if not self.ready.is_set():
            self.ready.set()
