"""Ladder's answering side: model backends, model packs, strategies and the service API."""

from assistant import offline as _offline  # noqa: F401  (sets privacy env before anything heavy)

__version__ = "0.1.0"
