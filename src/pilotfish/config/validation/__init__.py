"""Istio's webhook validation: per kind, a function of the resource returning a Verdict.

``validate`` runs the one for the resource's kind (the table is ``registry.VALIDATORS``);
kinds without semantic rules (the Kubernetes built-ins) are valid once they parse. The
per-kind modules import their shared checks from sibling modules, never from this package.
"""

from .registry import VALIDATORS, Validator, validate

__all__ = ["VALIDATORS", "Validator", "validate"]
