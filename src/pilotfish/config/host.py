"""Host names with Istio's matching rules (pkg/config/host/name.go).

A host is either an exact name (``reviews.default.svc.cluster.local``), a wildcard with a
leading ``*`` (``*.example.com``), or the bare ``*``. Short names (``reviews``) resolve to an
FQDN in the resource's namespace.
"""

from __future__ import annotations

DEFAULT_DOMAIN_SUFFIX = "cluster.local"


class Hostname(str):
    """A host name that knows how it matches other host names."""

    __slots__ = ()

    @property
    def is_wildcard(self) -> bool:
        return self.startswith("*")

    def matches(self, other: str) -> bool:
        """True when the two hosts share at least one concrete name (symmetric)."""
        a, b = str(self), str(other)
        a_wild, b_wild = a.startswith("*"), b.startswith("*")
        if not a_wild and not b_wild:
            return a == b
        if a_wild and b_wild:
            return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
        wild, name = (a, b) if a_wild else (b, a)
        return name.endswith(wild[1:])

    def subset_of(self, other: str) -> bool:
        """True when every name this host covers is also covered by ``other``."""
        a, b = str(self), str(other)
        if b.startswith("*"):
            if a.startswith("*"):
                return a[1:].endswith(b[1:])
            return a.endswith(b[1:])
        return not a.startswith("*") and a == b


def resolve_short_name(host: str, namespace: str | None, domain_suffix: str = DEFAULT_DOMAIN_SUFFIX) -> Hostname:
    """Expand ``reviews`` to ``reviews.<ns>.svc.<suffix>``; leave dotted names and wildcards alone.

    Istio treats a name with no dot as a short name of a service in the resource's namespace.
    """
    if host == "*" or host.startswith("*") or "." in host or not namespace:
        return Hostname(host)
    return Hostname(f"{host}.{namespace}.svc.{domain_suffix}")

