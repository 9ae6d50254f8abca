"""Embedder packs: readers of carried embedder files and their converters."""
