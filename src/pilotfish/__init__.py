"""pilotfish: a service mesh in Python that speaks Istio's API."""

__version__ = "0.1.0"
