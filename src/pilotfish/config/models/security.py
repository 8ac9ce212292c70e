"""Placeholder: filled in by its owner."""

KINDS: list = []
