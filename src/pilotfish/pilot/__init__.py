"""Pilot's translation: Istio config plus the service registry, for one proxy, into Envoy xDS.

Pure functions of an immutable PushContext and a Proxy (no I/O, no clocks), as Istio splits its
PushContext from configgen."""
