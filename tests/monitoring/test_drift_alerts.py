"""Generated traffic over simulated days: a quiet fortnight, then a week of questions from other
domains with more thumbs-down. The drift and thumbs-down alerts fire on the drift week and not
on the quiet period, through a real knowledge base (the packaged MiniLM embedder); the drift
statistics agree with scipy's."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from assistant.settings import Settings, load_settings
from evaluation.monitor import FIRING, QUIET, check, drift, load_rules, parse_rule, reference_from_suite
from evaluation.monitor.drift import beta_binomial_tail, far_p_value, far_threshold, ks_two_sample
from tests.cli_helpers import run, wide_terminal  # noqa: F401
from tests.monitoring.traffic import (
    DRIFT_DAYS,
    QUIET_DAYS,
    build_world,
    end_of_day,
)

RULES = [
    parse_rule("thumbs_down_rate over 7d > 0.3 with >= 20 ratings"),
    parse_rule("drift_far_p over 7d < 0.01 with >= 20 questions"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """Settings with a `handbook` knowledge base, the dev suite, and the simulated traffic; built
    once for the module (the tests only read it)."""
    return build_world(tmp_path_factory.mktemp("monitor_world"))


def test_alerts_fire_on_the_drift_week_and_not_on_the_quiet_fortnight(world: tuple[Settings, Path]) -> None:
    settings, suite = world
    reference = reference_from_suite(suite)
    quiet = check(settings, RULES, as_of=end_of_day(QUIET_DAYS), drift_reference=reference, kb="handbook")
    assert [r.state for r in quiet] == [QUIET, QUIET], quiet
    assert quiet[0].samples >= 20 and quiet[0].value is not None and quiet[0].value < 0.3
    drifted = check(
        settings, RULES, as_of=end_of_day(QUIET_DAYS + DRIFT_DAYS), drift_reference=reference, kb="handbook"
    )
    assert [r.state for r in drifted] == [FIRING, FIRING], drifted
    assert drifted[0].value is not None and drifted[0].value > 0.3
    assert drifted[1].value is not None and drifted[1].value < 0.01 and drifted[1].samples >= 20


def test_the_drift_report_says_why(world: tuple[Settings, Path]) -> None:
    settings, suite = world
    reference = reference_from_suite(suite)
    quiet = drift(settings, reference, kb="handbook", as_of=end_of_day(QUIET_DAYS))
    drifted = drift(settings, reference, kb="handbook", as_of=end_of_day(QUIET_DAYS + DRIFT_DAYS))
    assert [s.name for s in drifted.similarities] == ["kb", "dev"]
    assert quiet.far_share is not None and quiet.far_share <= 0.10
    assert drifted.far_share is not None and drifted.far_share > 0.3
    # the far questions are the other domains' ones
    assert drifted.far_examples and all("?" in q for q in drifted.far_examples)
    in_domain = ("return", "ship", "deliver", "warranty", "pay", "account", "send back", "express")
    assert not any(word in q.lower() for q in drifted.far_examples for word in in_domain)
    for name in ("kb", "dev"):
        before, after = quiet.similarity(name), drifted.similarity(name)
        assert before is not None and after is not None
        assert after.recent_median is not None and before.recent_median is not None
        assert after.recent_median < before.recent_median  # recent questions moved away
        assert after.ks_p is not None and after.ks_p < 0.001


def test_ladder_monitor_check_exits_1_on_drift_and_0_when_quiet(
    world: tuple[Settings, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, suite = world
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: unhappy\n    when: thumbs_down_rate over 7d > 0.3 with >= 20 ratings\n"
        "  - drift_far_p over 7d < 0.01 with >= 20 questions\n"
        f"drift:\n  suite: {suite}\n  kb: handbook\n",
        encoding="utf-8",
    )
    home = ["--home", str(settings.home)]
    code, out, _ = run(["monitor", "check", "--rules", str(rules), "--at", "2026-01-14", *home], capsys)
    assert code == 0 and out.count("QUIET") == 2, out
    code, out, _ = run(["monitor", "check", "--rules", str(rules), "--at", "2026-01-21", *home], capsys)
    assert code == 1 and out.count("FIRING") == 2, out
    assert "unhappy: thumbs_down_rate over 7d = " in out and "threshold > 0.3" in out and "ratings" in out
    code, out, _ = run(
        ["monitor", "drift", "--suite", str(suite), "--kb", "handbook", "--at", "2026-01-21", *home], capsys
    )
    assert code == 0 and "far from everything" in out and "beta-binomial p" in out


def test_ks_and_beta_binomial_agree_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    a = [rng.gauss(0, 1) for _ in range(80)]
    b = [rng.gauss(0.4, 1) for _ in range(120)]
    d, p = ks_two_sample(a, b)
    reference = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(reference.statistic)
    assert p == pytest.approx(reference.pvalue, rel=0.1, abs=1e-3)
    for x, m, alpha, beta in ((0, 50, 2, 39), (3, 50, 2, 39), (9, 60, 1, 19), (40, 40, 5, 96)):
        expected = stats.betabinom(m, alpha, beta).sf(x - 1)
        assert beta_binomial_tail(x, m, alpha, beta) == pytest.approx(expected)
    # a large reference: the binomial test against 5%
    assert far_p_value(12, 100, 100_000 - 1) == pytest.approx(
        stats.binomtest(12, 100, 0.05, "greater").pvalue, rel=0.01
    )


def test_far_counts_of_exchangeable_questions_follow_the_beta_binomial_law() -> None:
    # k = floor(0.05 (n + 1)): 19 values -> the smallest; 39 -> the 2nd; 18 -> none (too few)
    assert far_threshold(list(range(19))) == 0 and far_threshold(list(range(39))) == 1
    assert far_threshold(list(range(18))) is None
    # Simulated "no drift": 40 reference values and 100 recent ones from one distribution. The
    # p-value is (close to) uniform, so p < 0.01 about 1% of the time; the plain binomial test
    # against 5% would ignore that the threshold is estimated and fire far more often.
    rng = random.Random(5)
    fired = fired_binomial = 0
    for _ in range(1000):
        threshold = far_threshold([rng.random() for _ in range(40)]) or 0
        far = sum(rng.random() < threshold for _ in range(100))
        fired += far_p_value(far, 100, 40) < 0.01
        fired_binomial += far_p_value(far, 100, 10**6) < 0.01
    assert fired / 1000 <= 0.02
    assert fired_binomial / 1000 > 0.05


def test_the_shipped_rules_load_and_drift_rules_are_skipped_without_a_reference(isolated_home: Path) -> None:
    rule_file = load_rules()
    metrics = [r.metric for r in rule_file.rules]
    assert metrics == ["thumbs_down_rate", "not_in_kb_rate", "latency_p95_ms", "drift_far_p"]
    results = check(load_settings(), rule_file.rules)
    assert [r.state for r in results] == ["not enough data", "not enough data", "not enough data", "skipped"]
