"""The local mesh: istiod, gateways and every workload with its sidecar as processes on one
machine, each instance on its own loopback address (``pilotfish up``)."""
