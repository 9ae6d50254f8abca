"""Ladder finetune."""

from assistant import offline as _offline  # noqa: F401  (privacy env before heavy imports)
