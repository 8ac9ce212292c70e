"""Istio config: typed models of every kind, YAML loading, webhook validation, cross-resource
analysis and the persistent store."""
