"""The control-plane process: config and registry in, xDS out (istiod)."""
