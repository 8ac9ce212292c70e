"""Placeholder: filled in by its owner."""

VALIDATORS: dict = {}
