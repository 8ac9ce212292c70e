"""The process layer: server lifecycle, worker processes, admin, the worker relay and config
dump, assembled in one composition root (assemble.py)."""
