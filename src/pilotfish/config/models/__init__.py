"""Typed models of every kind the mesh reads, one module per concern.

Each module declares its kinds (``KINDS``); the registry that collects them is
``pilotfish.config.kinds``, one layer up.
"""
