"""Cross-resource analysis, as ``istioctl analyze``: IST messages about config that is valid
resource by resource but wrong as a whole (a route to a host that does not exist, two
Sidecars selecting one pod, a Gateway port no Service exposes...).

``analyze(resources)`` runs every analyzer (or the named ones) over a snapshot of the
resources plus the defaults istioctl assumes, and returns the messages sorted and deduplicated;
``analyze(resources, files_only=True)`` is ``istioctl analyze --use-kube=false``: files alone,
so the checks that need a cluster's Pods, Services, Namespaces, Nodes or Secrets are skipped.
The analyzers are listed in ``registry``; this package only re-exports the public names.
"""

from .framework import Analyzer, Message, ResourceRef
from .messages import BY_CODE, CATALOG, Level, MessageType
from .registry import all_analyzers, analyze, analyzer_names, skipped_analyzers
from .schema import load_error_messages

__all__ = [
    "BY_CODE",
    "CATALOG",
    "Analyzer",
    "Level",
    "Message",
    "MessageType",
    "ResourceRef",
    "all_analyzers",
    "analyze",
    "analyzer_names",
    "load_error_messages",
    "skipped_analyzers",
]
