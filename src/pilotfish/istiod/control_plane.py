"""What istiod's API and debug views read from the running control plane (server.Istiod
implements it), so they need not import the server that serves them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..pilot.proxy import Proxy
from ..pilot.push_context import PushContext
from .config_dir import ConfigDir


class AdsView(Protocol):
    def connections(self) -> Sequence[Any]: ...


class ControlPlane(Protocol):
    config: ConfigDir
    push_context: PushContext
    ready: bool
    token: str | None
    ads: AdsView

    def metrics(self) -> str: ...

    def node_of(self, proxy_id: str) -> Any: ...

    def proxy_for(self, node: Any) -> Proxy: ...

    def known_proxy(self, node_id: str) -> Proxy | None: ...

    def config_changed(self, paths: set[str]) -> bool: ...
