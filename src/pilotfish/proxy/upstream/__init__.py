"""Upstream clusters: host sets, load balancers, connection pools, circuit breakers, outlier detection, health checks."""
