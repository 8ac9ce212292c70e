"""What several end-to-end tests share: a bootstrap with one route to cluster "c" over the
given ports, with a retry policy, route and virtual-host fields, and a file access log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..conftest import bootstrap, cluster

LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
PREVIOUS_HOSTS = {"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}


def doc_for(ports: list[int], retry: dict[str, Any] | None = None, route: dict[str, Any] | None = None,
            vhost: dict[str, Any] | None = None, log: Path | None = None, **cluster_extra: Any) -> dict:
    action: dict[str, Any] = {"cluster": "c", **(route or {})}
    if retry is not None:
        action["retry_policy"] = retry
    vh = {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": action}],
          "include_request_attempt_count": True, **(vhost or {})}
    hcm: dict[str, Any] = {}
    if log is not None:
        hcm["access_log"] = [{"name": "log", "typed_config": {"@type": LOG, "path": str(log)}}]
    return bootstrap({"virtual_hosts": [vh]}, [cluster("c", *ports, **cluster_extra)], **hcm)
