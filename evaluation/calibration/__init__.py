"""Checking an LLM judge against a person's labels before its scores are trusted.

``ladder judge check --judge M`` scores the project's labelled set (``datasets/judge``) with
each judged metric, measures how well the judge's scores agree with the labels
(``agreement``), and stores the result per judge (``store``). Reports show the stored
agreement beside every judged score, and a decision refuses a judged target whose judge
agrees less than its bar (``evaluation.decide``).
"""
