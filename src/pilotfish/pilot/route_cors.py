"""A VirtualService rule's ``corsPolicy`` → the route's ``envoy.filters.http.cors`` CorsPolicy
(Istio's TranslateCORSPolicy), carried in ``typed_per_filter_config``."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.type.matcher.v3 import string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, wrappers_pb2

from ..config.models.virtualservice import CorsPolicy, UnmatchedPreflights
from .route_match import string_matcher

CORS_FILTER = "envoy.filters.http.cors"


def cors_policy(policy: CorsPolicy) -> any_pb2.Any:
    """The policy as Istio writes it: always enabled (100%), unmatched preflights forwarded
    unless ``unmatchedPreflights: IGNORE``, lists joined with commas, ``maxAge`` in seconds."""
    out = cors_pb2.CorsPolicy(
        allow_methods=",".join(policy.allow_methods or ()),
        allow_headers=",".join(policy.allow_headers or ()),
        expose_headers=",".join(policy.expose_headers or ()),
        filter_enabled=base_pb2.RuntimeFractionalPercent(default_value=percent_pb2.FractionalPercent(
            numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED)),
        forward_not_matching_preflights=wrappers_pb2.BoolValue(
            value=policy.unmatched_preflights != UnmatchedPreflights.IGNORE),
    )
    if policy.allow_origins is not None:
        out.allow_origin_string_match.extend(string_matcher(m) for m in policy.allow_origins)
    elif policy.allow_origin is not None:  # the deprecated exact-origin list
        out.allow_origin_string_match.extend(string_pb2.StringMatcher(exact=o) for o in policy.allow_origin)
    if policy.allow_credentials is not None:
        out.allow_credentials.value = policy.allow_credentials
    if policy.max_age is not None:
        out.max_age = str(policy.max_age.nanos // 1_000_000_000)
    packed = any_pb2.Any()
    packed.Pack(out)
    return packed
