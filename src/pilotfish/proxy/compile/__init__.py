"""Compile parsed Envoy messages into the proxy's runtime objects, once per config."""

from ..http.config import RuntimeConfig
from .bootstrap import Compiled, compile_bootstrap

__all__ = ["Compiled", "RuntimeConfig", "compile_bootstrap"]
