"""HTTP filters in the listener's order: fault, Istio metadata exchange, the health_check filter, access logs."""
