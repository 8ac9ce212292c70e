"""Typed models of every kind the mesh reads, one module per concern."""

from . import (
    common,
    destinationrule,
    envoyfilter,
    extensions,
    gateway,
    kube,
    proxyconfig,
    security,
    serviceentry,
    sidecar,
    telemetry,
    virtualservice,
    workload,
)

MODULES = (
    virtualservice,
    destinationrule,
    gateway,
    serviceentry,
    sidecar,
    workload,
    proxyconfig,
    envoyfilter,
    security,
    telemetry,
    extensions,
    kube,
)

__all__ = ["MODULES", "common"]
