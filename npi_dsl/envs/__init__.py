"""Environments: one module each, one shared interface (base.py)."""
