"""Every analyzer in Istio's order, and ``analyze`` that runs them over a set of resources.

The analyzer modules are imported here explicitly (each lists its ``ANALYZERS``); they import
the framework and snapshot modules below them, never this registry or the package's face.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..base import Resource
from ..models.kube import MeshConfig, MeshNetworks
from .conditions import ANALYZERS as CONDITIONS
from .context import RUNTIME_KINDS
from .deprecation import ANALYZERS as DEPRECATION
from .destinationrule import ANALYZERS as DESTINATION_RULE
from .envoyfilter import ANALYZERS as ENVOY_FILTER
from .framework import Analyzer, Message, finish, run_analyzers, select
from .gateway import ANALYZERS as GATEWAY
from .k8sgateway import ANALYZERS as K8S_GATEWAY
from .schema import ANALYZERS as SCHEMA
from .security import ANALYZERS as SECURITY
from .serviceentry import ANALYZERS as SERVICE_ENTRY
from .sidecar import ANALYZERS as SIDECAR
from .telemetry import ANALYZERS as TELEMETRY
from .virtualservice import ANALYZERS as VIRTUAL_SERVICE
from .workloads import ANALYZERS as WORKLOADS

# Istio's order: by package, then name.
ANALYZERS: tuple[Analyzer, ...] = (
    *SECURITY,
    *CONDITIONS,
    *DEPRECATION,
    *DESTINATION_RULE,
    *ENVOY_FILTER,
    *GATEWAY,
    *K8S_GATEWAY,
    *SERVICE_ENTRY,
    *SIDECAR,
    *TELEMETRY,
    *VIRTUAL_SERVICE,
    *WORKLOADS,
    *SCHEMA,
)


def all_analyzers() -> tuple[Analyzer, ...]:
    """Every analyzer, in Istio's order (by package, then name)."""
    return ANALYZERS


def analyzer_names() -> list[str]:
    return [a.name for a in ANALYZERS]


def analyze(
    resources: Iterable[Resource],
    *,
    mesh_config: MeshConfig | None = None,
    analyzers: Iterable[str | Analyzer] | None = None,
    mesh_networks: MeshNetworks | None = None,
    now: datetime | None = None,
    files_only: bool = False,
) -> list[Message]:
    """Run the analyzers over ``resources`` and return their messages, istioctl-sorted.

    ``mesh_config`` defaults to Istio's default MeshConfig. ``analyzers`` names the analyzers
    to run (Istio's names, e.g. ``"virtualservice.DestinationHostAnalyzer"``); all by default.
    Each returned Message has ``code`` (IST0101), ``name``, ``level`` (Level.ERROR/WARNING/INFO),
    ``text`` (also ``message``), ``resource`` (a ResourceRef: kind, name, namespace as the input
    gave it), ``position`` (file and line of the resource's document) and ``analyzer``.
    Messages on a resource annotated ``galley.istio.io/analyze-suppress: <codes|*>`` are dropped.
    Raises KeyError for an unknown analyzer name.

    ``files_only`` analyzes ``resources`` as files a user wrote, with no cluster behind them, as
    ``istioctl analyze --use-kube=false`` does: Pods, Services, Namespaces, Nodes and Secrets
    in them are ignored, and so are the analyzers that need those kinds (``skipped_analyzers``).
    Without it the resources are the whole picture, runtime kinds included (Istio's analyzer
    tests, or a live mesh).
    """
    chosen = select(ANALYZERS, analyzers)
    messages = run_analyzers(resources, chosen, mesh_config=mesh_config, mesh_networks=mesh_networks, now=now, files_only=files_only)
    return finish(messages)


def skipped_analyzers(*, files_only: bool = False, analyzers: Iterable[str | Analyzer] | None = None) -> list[str]:
    """Names of the chosen analyzers that do not run in that mode (istioctl analyze -v's "Skipped analyzers")."""
    missing = RUNTIME_KINDS if files_only else frozenset()
    return [a.name for a in select(ANALYZERS, analyzers) if not a.runs_without(missing)]
