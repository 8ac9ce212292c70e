"""Envoy v3 type URLs, their kinds, and how a resource of each is named."""

from __future__ import annotations

from typing import Any

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

#: Envoy's warming order: clusters, their endpoints, then listeners, their routes.
ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
#: Types for which a state-of-the-world response is the whole set (absence means removal).
FULL_STATE = frozenset({LISTENER, CLUSTER})
#: Short names used in error paths and logs, Envoy's resource kinds.
KIND = {LISTENER: "Listener", ROUTE: "RouteConfiguration", CLUSTER: "Cluster",
        ENDPOINT: "ClusterLoadAssignment"}


def resource_name(type_url: str, msg: Any) -> str:
    """A resource's name: ``cluster_name`` for a ClusterLoadAssignment, ``name`` otherwise."""
    return msg.cluster_name if type_url == ENDPOINT else msg.name  # type: ignore[no-any-return]


def message_class(type_url: str) -> Any:
    """The protobuf class of a type URL (its module must have been imported)."""
    from google.protobuf import symbol_database

    return symbol_database.Default().GetSymbol(type_url.rsplit("/", 1)[-1])
