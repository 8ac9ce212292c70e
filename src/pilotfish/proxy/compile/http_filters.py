"""The connection manager's HTTP filter chain, composed in one place.

The listener's ``http_filters`` are walked once, in their order; each type this proxy runs has
one entry in ``COMPILERS`` below, which compiles its config into what the request path calls.
Where the request path calls them (router/stream.py, router/response.py, router/local_reply.py):

    pre_route       before routing, in order: path normalization (the connection manager's own),
                    envoy.filters.http.health_check; each may answer the request itself
    after_route     after routing, in the listener's order: envoy.filters.http.cors (its policies
                    are the route's; it may answer a preflight) and envoy.filters.http.fault (it
                    matches on the route and cluster); None when neither is configured
    peer_exchange   istio.metadata_exchange, on the request and response heads
    istio_stats     istio.stats, at the end of the stream
    router          last, once: forwards the request (its suppress_envoy_headers is read here)

An optional filter of a type not listed is skipped, as Envoy skips it; any other unknown type
was refused by the supported-subset check (subset.py) before this runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..common.errors import ProxyConfigError
from ..filters.cors_filter import CORS_TYPE
from ..filters.fault_filter import FAULT_TYPE
from .cors import compile_cors_filter
from .edge import compile_health_check
from .fault import compile_fault_filter
from .istio_config import PEER_METADATA_TYPE, STATS_TYPE, TYPED_STRUCT_TYPES, message_class, unpack_typed_struct
from .istio_filters import compile_istio_stats, compile_metadata_exchange
from .layered_runtime import Runtime
from .subset import HEALTH_CHECK_TYPE, unpack_any

ROUTER = "envoy.extensions.filters.http.router.v3.Router"
BUFFER = "envoy.extensions.filters.http.buffer.v3.Buffer"


@dataclass(slots=True)
class FilterChain:
    """What the listener's HTTP filters compiled into (see the module docstring)."""

    names: list[str] = field(default_factory=list)  # the filters' types, in order, the router last
    pre_route: list[Callable[[Any], bool]] = field(default_factory=list)
    cors: Any = None  # filters.cors_filter.CorsFilter
    fault: Any = None  # filters.fault_filter.FaultFilter
    after_route: Callable[[Any, Any, str], bool] | None = None  # see the module docstring
    peer_exchange: Any = None  # filters.peer_metadata.PeerExchange
    istio_stats: Any = None  # common.istio_metrics.IstioStatsRecorder
    max_request_bytes: int = 0  # envoy.filters.http.buffer's; 0: no limit
    suppress_envoy_headers: bool = False  # the router's


@dataclass(slots=True)
class _Context:
    """What a filter's compiler may need besides its own config."""

    hcm: Any  # the HttpConnectionManager message
    path: str  # its field path
    listener: Any  # the Listener message (istio.stats reports by its traffic direction), or None
    stats: Any  # the StatsStore
    runtime: Runtime


def _buffer(chain: FilterChain, name: str, cfg: Any, path: str, ctx: _Context) -> None:
    chain.max_request_bytes = cfg.max_request_bytes.value


def _cors(chain: FilterChain, name: str, cfg: Any, path: str, ctx: _Context) -> None:
    if chain.cors is not None:
        raise ProxyConfigError("only one cors filter per connection manager is supported", path)
    chain.cors = compile_cors_filter(name, path)


def _fault(chain: FilterChain, name: str, cfg: Any, path: str, ctx: _Context) -> None:
    if chain.fault is not None:
        raise ProxyConfigError("only one fault filter per connection manager is supported", path)
    chain.fault = compile_fault_filter(name, cfg, path, ctx.stats, ctx.hcm.stat_prefix, runtime=ctx.runtime)


def _health_check(chain: FilterChain, name: str, cfg: Any, path: str, ctx: _Context) -> None:
    node = getattr(ctx.stats, "node", None)
    chain.pre_route.append(compile_health_check(cfg, f"{path}.typed_config", node.cluster if node else "").__call__)


def _metadata_exchange(chain: FilterChain, name: str, cfg: Any, path: str, ctx: _Context) -> None:
    chain.peer_exchange = compile_metadata_exchange(cfg, ctx.stats)


def _istio_stats(chain: FilterChain, name: str, cfg: Any, path: str, ctx: _Context) -> None:
    chain.istio_stats = compile_istio_stats(cfg, ctx.listener, ctx.path, ctx.stats)


def _router(chain: FilterChain, name: str, cfg: Any, path: str, ctx: _Context) -> None:
    chain.suppress_envoy_headers = cfg.suppress_envoy_headers


#: The HTTP filters this proxy runs, by type: each one's compiler.
COMPILERS: dict[str, Callable[[FilterChain, str, Any, str, _Context], None]] = {
    BUFFER: _buffer,
    CORS_TYPE: _cors,
    FAULT_TYPE: _fault,
    HEALTH_CHECK_TYPE: _health_check,
    PEER_METADATA_TYPE: _metadata_exchange,
    STATS_TYPE: _istio_stats,
    ROUTER: _router,
}


def compose(hcm: Any, path: str, stats: Any, runtime: Runtime, listener: Any = None,
            pre_route: list[Callable[[Any], bool]] | None = None) -> FilterChain:
    """The chain of an HttpConnectionManager message at ``path``; ``pre_route``: the connection
    manager's own hooks that run before the filters' (path normalization)."""
    chain = FilterChain(pre_route=list(pre_route or ()))
    ctx = _Context(hcm, path, listener, stats, runtime)
    for i, f in enumerate(hcm.http_filters):
        fp = f"{path}.http_filters[{i}]"
        if not f.HasField("typed_config"):
            raise ProxyConfigError("http filters need a typed_config", fp)
        type_name = f.typed_config.type_url.rsplit("/", 1)[-1]
        if type_name in TYPED_STRUCT_TYPES:  # Istio's filters, as istiod writes them
            type_name, cfg = unpack_typed_struct(f.typed_config, f"{fp}.typed_config")
        elif type_name in (STATS_TYPE, PEER_METADATA_TYPE):
            cfg = message_class(type_name)()
            f.typed_config.Unpack(cfg)
        elif type_name != ROUTER and f.is_optional and type_name not in COMPILERS:
            continue  # an optional filter we do not implement is skipped, as Envoy does
        else:
            cfg = unpack_any(f.typed_config, f"{fp}.typed_config", "http_filter")
        compiler = COMPILERS.get(type_name)
        if compiler is not None:
            compiler(chain, f.name, cfg, fp, ctx)
        chain.names.append(type_name)
    if not chain.names or chain.names[-1] != ROUTER or chain.names.count(ROUTER) != 1:
        raise ProxyConfigError("the router filter must be present, once, and last", f"{path}.http_filters")
    chain.after_route = _after_route(chain)
    return chain


def _after_route(chain: FilterChain) -> Callable[[Any, Any, str], bool] | None:
    """One hook for the filters that act on the routed request, so that a listener with neither
    costs one attribute test; with both, they run in the listener's order."""
    if chain.cors is None:
        return chain.fault.intercept if chain.fault is not None else None
    if chain.fault is None:
        return chain.cors.intercept
    cors_first = chain.names.index(CORS_TYPE) < chain.names.index(FAULT_TYPE)
    chain.cors.before_fault = cors_first
    first, second = (chain.cors, chain.fault) if cors_first else (chain.fault, chain.cors)

    def both(stream: Any, route: Any, cluster: str) -> bool:
        return first.intercept(stream, route, cluster) or second.intercept(stream, route, cluster)
    return both
