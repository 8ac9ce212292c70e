"""The ADS client: one gRPC stream (``grpc.aio``) carrying CDS, EDS, LDS and RDS, state of the world.

Order as Envoy: CDS first, EDS for the EDS clusters it names, then (once clusters are warm) LDS,
then RDS for the routes listeners name. Every response is checked (the ``check`` callable: the
proxy's supported subset) and handed to the config target before it is ACKed. As in Envoy,
resources are accepted one by one: those that apply are applied, and if any is rejected the
response is NACKed with ``error_detail`` naming each rejected resource and why
(RejectedResources), while a rejected resource that existed keeps its previous version. Envoy's
``control_plane.*`` and subscription stats are counted by a ``StatsSink`` when one is given.
When the stream fails the client reconnects with jittered exponential back-off, re-sending the
last accepted versions, and the proxy keeps serving the last good config meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from .backoff import JitteredExponentialBackOff
from .errors import RejectedResources, ResourceRejected
from .resources import Checker, ResponseResources, decode_each
from .settings import AdsSettings
from .state import RequestSpec, TypeState
from .type_urls import CLUSTER, ENDPOINT, FULL_STATE, KIND, LISTENER, ORDER, ROUTE

log = logging.getLogger("pilotfish.xds")

_INVALID_ARGUMENT = 3


class ConfigTarget(Protocol):
    """What the client drives: the proxy's dynamic config, a fake in tests.

    ``update`` gets a ResponseResources (a mapping with ``rejected``/``unnamed``) and raises
    ResourceRejected to NACK (RejectedResources when the rest was applied). A target with a
    ``resources`` snapshot (resources.Resources) tells the stats which names still wait.
    """

    def wanted(self, type_url: str) -> frozenset[str]: ...
    def is_warm(self, type_url: str) -> bool: ...
    async def update(self, type_url: str, version: str, messages: Mapping[str, Any]) -> None: ...


Subscriptions = Iterable[tuple[str, Iterable[str]]]


class StatsSink(Protocol):
    """Where the client counts Envoy's xDS stats (the proxy's stats store behind it)."""

    def subscribe(self, type_url: str) -> None: ...
    def connected(self, up: bool) -> None: ...
    def response(self, type_url: str, version: str, names: Iterable[str], rejected: Iterable[str],
                 whole: bool, empty: bool) -> None: ...
    def stream_failed(self, subscriptions: Subscriptions) -> None: ...
    def initial_fetch_timeout(self, subscriptions: Subscriptions) -> None: ...


def accept_all(message: Any, path: str) -> Sequence[str]:
    """A checker that takes every resource as it is (no warnings)."""
    del message, path
    return ()


class AdsClient:
    def __init__(self, settings: AdsSettings, node: Any, config: ConfigTarget, rng: random.Random, *,
                 check: Checker = accept_all, stats: StatsSink | None = None,
                 backoff: JitteredExponentialBackOff | None = None) -> None:
        self.settings = settings
        self.node = node
        self.config = config
        self.check = check
        self.stats = stats
        # Envoy's gRPC mux: the router's jittered back-off with a 500 ms base and a 30 s cap.
        self.backoff = backoff or JitteredExponentialBackOff(500, 30_000, rng)
        self.states = {t: TypeState(t, wildcard=t in (CLUSTER, LISTENER)) for t in ORDER}
        self.active: set[str] = set()  # types subscribed to (re-sent on every new stream)
        self.ready = asyncio.Event()  # initial config fetched (or initial_fetch_timeout passed)
        self.connected = False
        self.streams = 0
        self.accepted = 0
        self.rejected = 0
        self._queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] | None = None
        self._node_sent = False
        self._timed_out = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.settings.cds:
            self.active.add(CLUSTER)
            if self.stats is not None:
                self.stats.subscribe(CLUSTER)
        self._advance()
        if self.settings.initial_fetch_timeout > 0:
            self._timer = loop.call_later(self.settings.initial_fetch_timeout, self._on_initial_timeout)
        self._task = loop.create_task(self._run())

    async def stop(self) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._queue is not None:
            self._queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # noqa: BLE001 - already logged by the loop
                pass

    def _on_initial_timeout(self) -> None:
        self._timer = None
        if not self.ready.is_set():
            log.warning("xDS: initial fetch timed out; starting with what has arrived")
        if self.stats is not None:
            self.stats.initial_fetch_timeout(self._waiting())
        self._timed_out = True
        self._advance()
        self.ready.set()

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._stream_once()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("xDS stream to %s failed: %s %s", self.settings.target, exc.code().name,
                            exc.details())
            except Exception:
                log.exception("xDS stream to %s failed", self.settings.target)
            else:
                log.warning("xDS stream to %s closed by the server", self.settings.target)
            self.connected = False
            if self.stats is not None:
                self.stats.stream_failed(self._subscriptions())
            if self._closing:
                return
            await asyncio.sleep(self.backoff.next_backoff())

    async def _stream_once(self) -> None:
        options = [("grpc.default_authority", self.settings.authority)] if self.settings.authority else []
        channel = grpc.aio.insecure_channel(self.settings.target, options=options)
        queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        try:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            for st in self.states.values():
                st.reset_stream()
            self._node_sent = False
            self._queue = queue
            self.streams += 1
            call = stub.StreamAggregatedResources(_drain(queue), metadata=self.settings.metadata or None)
            for t in ORDER:  # resume: last accepted versions, no nonce, in warming order
                if t in self.active:
                    self._send(self.states[t].subscribe())
            async for response in call:
                if not self.connected:
                    self.connected = True
                    self.backoff.reset()
                    if self.stats is not None:
                        self.stats.connected(True)
                await self._on_response(response)
        finally:
            if self._queue is queue:
                self._queue = None
            queue.put_nowait(None)
            await channel.close(grace=None)

    # ---- requests ------------------------------------------------------------------------
    def _send(self, spec: RequestSpec | None) -> None:
        if spec is None or self._queue is None:
            return
        req = discovery_pb2.DiscoveryRequest(version_info=spec.version, resource_names=spec.names,
                                             type_url=spec.type_url, response_nonce=spec.nonce)
        first = not self._node_sent
        if first or (spec.with_node and not self.settings.node_on_first_message_only):
            req.node.CopyFrom(self.node)
            self._node_sent = True
        if spec.error is not None:
            req.error_detail.code = _INVALID_ARGUMENT
            req.error_detail.message = spec.error
        self._queue.put_nowait(req)

    def _start(self, type_url: str) -> None:
        self.active.add(type_url)
        if self.stats is not None:
            self.stats.subscribe(type_url)
        self._send(self.states[type_url].subscribe())

    def _subscriptions(self) -> list[tuple[str, frozenset[str]]]:
        """Every active subscription: (type, names) — names for RDS and EDS."""
        return [(t, self.states[t].names) for t in ORDER if t in self.active]

    def _waiting(self) -> list[tuple[str, frozenset[str]]]:
        """Subscriptions still without their first response (RDS/EDS: names not arrived)."""
        out = []
        for t, names in self._subscriptions():
            if t in FULL_STATE:
                if self.states[t].responses == 0:
                    out.append((t, names))
            else:
                resources = getattr(self.config, "resources", None)
                have = resources.of(t) if resources is not None else {}
                out.append((t, frozenset(n for n in names if n not in have)))
        return out

    def _sync(self, type_url: str) -> None:
        """Follow the names the accepted config references (subscribe, widen, narrow)."""
        st = self.states[type_url]
        names = self.config.wanted(type_url)
        if type_url in self.active:
            self._send(st.set_names(names))
        elif names:
            st.set_names(names)
            self._start(type_url)

    def _clusters_warm(self) -> bool:
        cds_done = not self.settings.cds or self.states[CLUSTER].responses > 0
        return cds_done and self.config.is_warm(ENDPOINT)

    def _advance(self) -> None:
        self._sync(ENDPOINT)
        if (self.settings.lds and LISTENER not in self.active
                and (self._clusters_warm() or self._timed_out)):
            self._start(LISTENER)
        self._sync(ROUTE)
        if not self.ready.is_set() and self._clusters_warm():
            lds_done = not self.settings.lds or self.states[LISTENER].responses > 0
            if lds_done and self.config.is_warm(ROUTE):
                self.ready.set()

    # ---- responses -----------------------------------------------------------------------
    async def _on_response(self, response: discovery_pb2.DiscoveryResponse) -> None:
        type_url = response.type_url
        st = self.states.get(type_url)
        if st is None:
            log.warning("xDS: ignoring a response of unsupported type %s", type_url)
            return
        version = response.version_info
        st.on_response(version, response.nonce)
        kind = KIND[type_url]
        warnings: list[str] = []
        decoded = decode_each(type_url, response.resources, st.wants, self.check, warnings)
        for w in warnings:
            log.warning("%s", w)
        rejected: set[str] = set()
        whole = False
        try:
            await self.config.update(type_url, version,
                                     ResponseResources(decoded.messages, decoded.rejected, decoded.unnamed))
        except RejectedResources as exc:
            self.rejected += 1
            rejected = set(exc.rejected)
            whole = type_url in FULL_STATE  # one LDS/CDS subscription: the response is rejected
            log.warning("xDS: %s version %s applied in part: %s", kind, version, exc)
            self._send(st.nack(version, str(exc)))
        except ResourceRejected as exc:
            self.rejected += 1
            whole = True
            log.warning("xDS: rejected %s version %s: %s", kind, version, exc)
            self._send(st.nack(version, str(exc)))
        except Exception as exc:  # a bug must not take the last good config down with it
            self.rejected += 1
            whole = True
            log.exception("xDS: rejected %s version %s", kind, version)
            self._send(st.nack(version, f"{kind} update failed: {exc}"))
        else:
            self.accepted += 1
            log.info("xDS: accepted %s version %s (%d resources)", kind, version, len(decoded.messages))
            self._send(st.ack(version))
        if self.stats is not None:
            self.stats.response(type_url, version, sorted(decoded.names), rejected, whole,
                                empty=not response.resources)
        self._advance()


async def _drain(queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None]
                 ) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
    while True:
        item = await queue.get()
        if item is None:
            return
        yield item
