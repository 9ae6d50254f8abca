"""Strategies: the rungs of the ladder (prompt, fewshot, reflection, rag, agent)."""
