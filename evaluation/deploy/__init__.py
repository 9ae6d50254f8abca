"""``ladder deploy``: the ladder's rule applied to serving formats.

A decision names a model (a pack, perhaps with an adapter) and how to ask it (the recommended
rung's strategy). A deployment builds that model in each serving format of
``finetune.deploy.formats`` from the cheapest to serve to the dearest, evaluates every one on the
decision's held-out test split with the decision's own targets, confidence and statistics
(``evaluation.decide.rules``), measures what it costs (size, peak RSS, load time, decode speed,
batched throughput, cost per 1,000 questions), and keeps the cheapest that still meets every
target at the confidence bound.

- ``source``: which model a decision names, its adapter merged into one folder.
- ``measure``: one format measured in a child process (so its peak RSS is its own).
- ``engine``: the run, cheapest format first, and the verdict.
- ``record``: ``LADDER_HOME/deployments/<name>/`` with each artifact and ``manifest.json``.
- ``report``: the table and verdict as Markdown and HTML, and how to serve the choice.
"""
