"""A fake ADS server for tests: ``grpc.aio`` on a port the OS picks (or a unix socket), in process.

A test sets the resources of each type (``set``) and they go out as state-of-the-world responses
to every stream subscribed to that type, a new version and nonce each time; responses built by
hand (duplicates, undecodable bytes) go out with ``push_raw``. Every request the client sends is
recorded, and ``wait_for``/``wait_ack``/``wait_nack`` wait for one. With ``silent`` the server
takes streams and requests but answers nothing (a control plane that never sends config)::

    ads = await FakeAds().start()
    ads.set(CLUSTER, cluster, push=False)         # served to whoever subscribes
    ... a client dials f"127.0.0.1:{ads.port}" ...
    await ads.wait_ack(CLUSTER, "1")
    await ads.stop()
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from .type_urls import FULL_STATE, ORDER, message_class, resource_name

Request = discovery_pb2.DiscoveryRequest
Response = discovery_pb2.DiscoveryResponse


class FakeAds(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.resources: dict[str, dict[str, Any]] = {t: {} for t in ORDER}
        self.versions: dict[str, int] = {t: 0 for t in self.resources}
        self.requests: list[Request] = []
        self.sent: list[Response] = []
        self.opened = 0  # streams opened over the server's life
        self._nonces = itertools.count(1)
        self._streams: list[tuple[asyncio.Queue[Response | None], dict[str, frozenset[str]]]] = []
        self._changed = asyncio.Event()
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.target = ""  # what a client dials: "127.0.0.1:PORT" or "unix:PATH"

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> FakeAds:
        """Serve on ``host:port`` (0: a port the OS picks, in ``port``)."""
        server = self._server()
        self.port = server.add_insecure_port(f"{host}:{port}")
        self.target = f"{host}:{self.port}"
        await server.start()
        return self

    async def start_unix(self, path: Path | str) -> FakeAds:
        """Serve on a unix socket (its directory is created)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        server = self._server()
        self.target = f"unix:{path}"
        server.add_insecure_port(self.target)
        await server.start()
        return self

    def _server(self) -> grpc.aio.Server:
        self.server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, self.server)
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
            self.server = None

    async def __aenter__(self) -> FakeAds:
        return self if self.server is not None else await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def active(self) -> int:
        """Streams open now."""
        return len(self._streams)

    # ---- what the test serves ---------------------------------------------------------------
    def set(self, type_url: str, *messages: Any, push: bool = True) -> str:
        """Replace the resources of a type (a new version); pushed to subscribed streams."""
        self.resources[type_url] = {resource_name(type_url, m): m for m in messages}
        self.versions[type_url] += 1
        if push:
            for queue, subs in self._streams:
                if type_url in subs:
                    queue.put_nowait(self._response(type_url, subs[type_url]))
        return str(self.versions[type_url])

    def push_raw(self, type_url: str, items: list[Any]) -> Response:
        """Send a response built by hand to every subscribed stream: each item a message (packed)
        or bytes (sent as the resource's value as they are)."""
        self.versions[type_url] += 1
        resp = Response(type_url=type_url, version_info=str(self.versions[type_url]),
                        nonce=f"raw{self.versions[type_url]}")
        for item in items:
            if isinstance(item, bytes):
                resp.resources.add(type_url=type_url, value=item)
            else:
                resp.resources.add().Pack(item)
        self.sent.append(resp)
        for queue, subs in self._streams:
            if type_url in subs:
                queue.put_nowait(resp)
        return resp

    def _response(self, type_url: str, names: frozenset[str]) -> Response:
        resp = Response(type_url=type_url, version_info=str(self.versions[type_url]),
                        nonce=str(next(self._nonces)))
        for name, msg in sorted(self.resources[type_url].items()):
            if type_url in FULL_STATE or name in names:
                resp.resources.add().Pack(msg)
        self.sent.append(resp)
        return resp

    # ---- waiting ----------------------------------------------------------------------------
    async def wait_for(self, pred: Callable[[Request], bool], timeout: float = 5.0) -> Request:
        """The first request (recorded so far or still to come) ``pred`` accepts."""
        async with asyncio.timeout(timeout):
            while True:
                for r in self.requests:
                    if pred(r):
                        return r
                self._changed.clear()
                await self._changed.wait()

    async def wait_ack(self, type_url: str, version: str, timeout: float = 5.0) -> Request:
        return await self.wait_for(lambda r: r.type_url == type_url and r.version_info == version
                                   and r.response_nonce != "" and not r.HasField("error_detail"), timeout)

    async def wait_nack(self, type_url: str, nonce: str, timeout: float = 5.0) -> Request:
        return await self.wait_for(lambda r: r.type_url == type_url and r.response_nonce == nonce
                                   and r.HasField("error_detail"), timeout)

    # ---- the service ------------------------------------------------------------------------
    async def StreamAggregatedResources(self, request_iterator: AsyncIterator[Request], context: Any
                                        ) -> AsyncIterator[Response]:
        self.opened += 1
        queue: asyncio.Queue[Response | None] = asyncio.Queue()
        subs: dict[str, frozenset[str]] = {}
        entry = (queue, subs)
        self._streams.append(entry)

        async def read() -> None:
            async for req in request_iterator:
                self.requests.append(req)
                self._changed.set()
                names = frozenset(req.resource_names)
                if self.silent:
                    continue
                if req.type_url not in subs or subs[req.type_url] != names:
                    subs[req.type_url] = names
                    queue.put_nowait(self._response(req.type_url, names))
            queue.put_nowait(None)

        reader = asyncio.get_running_loop().create_task(read())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            reader.cancel()
            self._streams.remove(entry)


def parse(type_url: str, doc: dict[str, Any]) -> Any:
    """A resource of ``type_url`` from its proto3 JSON form (a dict)."""
    from google.protobuf import json_format

    return json_format.ParseDict(doc, message_class(type_url)())
