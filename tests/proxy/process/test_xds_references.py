"""What the accepted config references: RDS and EDS names, and their stats scopes."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2

from pilotfish.proxy.process.xds_references import eds_names, eds_stat_names


def test_eds_names_use_service_name() -> None:
    c = cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.EDS)
    c.eds_cluster_config.service_name = "svc"
    assert eds_names([c, cluster_pb2.Cluster(name="static")]) == {"svc"}


def test_eds_stat_names_use_alt_stat_name() -> None:
    c = cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.EDS, alt_stat_name="c-stats")
    assert eds_stat_names([c]) == {"c": {"c-stats"}}
