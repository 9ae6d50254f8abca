"""Strategies: the rungs of the ladder (prompt, fewshot, reflection, rag, agent) and the
collaboration rungs that combine the base model with its fine-tuned adapter (route, delegate)."""

from assistant.strategies.base import register_strategy

register_strategy("route", "assistant.strategies.route:RouteStrategy")
register_strategy("delegate", "assistant.strategies.delegate:DelegateStrategy")
