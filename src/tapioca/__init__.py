"""Tapioca: a self-hosted analytics backend for websites and online shops."""

__version__ = "0.1.0"
