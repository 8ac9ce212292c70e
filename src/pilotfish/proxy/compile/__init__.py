"""Compile parsed Envoy messages into the proxy's runtime objects, once per config."""

from .compiled import RuntimeConfig
from .bootstrap import Compiled, compile_bootstrap

__all__ = ["Compiled", "RuntimeConfig", "compile_bootstrap"]
