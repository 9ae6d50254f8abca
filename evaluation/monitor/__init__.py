"""Monitoring: how the deployed choice does in use, and the way back to the ladder.

Reads the answer log (``assistant.monitoring``: one row per answer served by chat, the API or
``ladder ask``) and the feedback table. Every function takes ``Settings`` (the database is
``settings.db_path``) and returns plain dataclasses with ``to_dict()``; nothing here prints.
The CLI is ``ui/cli/monitor.py``; the workbench's Monitor page calls the same functions.

Series (``series``)::

    daily_series(settings, days=30, as_of=None) -> list[Stats]    # one per UTC day, oldest first
    window_stats(settings, days=7, as_of=None) -> Stats           # the last N days as one window
    series_json(series) -> str; series_csv(series) -> str         # the export

    Stats: start, end (ISO), day, questions, ratings, thumbs_down, thumbs_down_rate, kb_answers,
    not_in_kb, not_in_kb_rate, citable, cited, citation_rate, latency_p50_ms, latency_p95_ms,
    scored, best_score_median, best_score_p10 (rates None when their denominator is 0)

Drift (``drift``)::

    ref = reference_from_decision(settings, "latest")   # its dev suite's questions and its kb
    ref = reference_from_suite("suites/dev.yaml")        # or any suite (kb then given apart)
    report = drift(settings, ref, kb="handbook", days=7, as_of=None) -> DriftReport

    DriftReport: start, end, reference, kb, recent (distinct questions), similarities
    (list[Similarity]: name kb|dev, reference_n, recent_n, reference_median, recent_median,
    far_below, ks_d, ks_p), far, far_share, far_p, far_examples, notes

Alerts (``alerts``)::

    rule_file = load_rules(path or None)                 # None: the shipped default_rules.yaml
    results = check(settings, rule_file.rules, as_of=None, drift_reference=ref, kb=None)
    any_firing(results)                                  # -> bool

    AlertResult: rule, text, metric, window_days, op, threshold, value, samples, sample_of,
    min_samples, state ("firing" | "quiet" | "not enough data" | "skipped"), note, firing

Back to the ladder (``retest``)::

    result = retest(settings, "latest", keep_old=False) -> RetestResult
    RetestResult: old, new (Verdict: decision_id, status, recommended, dev_suite, test_suite,
    dev_items, rungs [{label, state, meets, dev {metric: mean}, test {metric: mean}}]), config,
    dev, test, dev_items, test_items, feedback_items, dropped (leaks), changed

How each number is defined (and why the drift threshold is what it is) is in the modules'
docstrings and docs/monitoring.md.
"""

from evaluation.monitor.alerts import (
    DEFAULT_RULES,
    FIRING,
    METRICS,
    NOT_ENOUGH,
    QUIET,
    SKIPPED,
    AlertResult,
    Rule,
    RuleFile,
    any_firing,
    check,
    load_rules,
    parse_rule,
)
from evaluation.monitor.drift import (
    DriftReference,
    DriftReport,
    Similarity,
    drift,
    drift_report,
    reference_from_decision,
    reference_from_suite,
)
from evaluation.monitor.retest import RetestResult, Verdict, retest
from evaluation.monitor.series import Stats, daily_series, series_csv, series_json, summarise, window_stats

__all__ = [
    "DEFAULT_RULES",
    "FIRING",
    "METRICS",
    "NOT_ENOUGH",
    "QUIET",
    "SKIPPED",
    "AlertResult",
    "DriftReference",
    "DriftReport",
    "RetestResult",
    "Rule",
    "RuleFile",
    "Similarity",
    "Stats",
    "Verdict",
    "any_firing",
    "check",
    "daily_series",
    "drift",
    "drift_report",
    "load_rules",
    "parse_rule",
    "reference_from_decision",
    "reference_from_suite",
    "retest",
    "series_csv",
    "series_json",
    "summarise",
    "window_stats",
]
