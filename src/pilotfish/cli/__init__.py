"""The ``pilotfish`` command."""
