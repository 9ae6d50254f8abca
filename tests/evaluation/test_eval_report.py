"""Reports from a hand-built run: what each format says, in which order, and that user
text cannot break out of it."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from evaluation.report import render_html, render_json, render_junit, render_markdown, write_report
from evaluation.report.common import comparison_reading, main_metric, worst_items
from evaluation.results import (
    COMPLETE,
    FAILED,
    Comparison,
    CostResult,
    GroupResult,
    ItemRecord,
    ItemScore,
    MetricResult,
    RunResult,
    StrategyResult,
)

HOSTILE = "<script>alert('pwned')</script>"
CHINESE = "什么是检索增强生成？"
LONG_CONTEXT = "检索" + "x" * 998  # 1000 characters: clipped to 300 in the drill-down


def _record(
    strategy: str, item_id: str, f1: float | None, *, reason: str = "", **extra: object
) -> ItemRecord:
    values: dict[str, object] = {
        "strategy": strategy,
        "item_id": item_id,
        "cache_key": f"key-{strategy}-{item_id}",
        "user_input": f"question {item_id}",
        "prompt": f"Answer briefly.\nquestion {item_id}",
        "response": f"answer {item_id}",
        "reference": f"reference {item_id}",
        "scores": {
            "token_f1": ItemScore(f1, reason),
            "faithfulness": ItemScore(0.5),
        },
        "prompt_tokens": 40,
        "completion_tokens": 8,
        "model_calls": 1,
        "latency_s": 0.2,
        "source": f"suite.jsonl:{item_id[-1]}",
    }
    values.update(extra)
    return ItemRecord(**values)  # type: ignore[arg-type]


def _metric(label: str, mean: float, low: float, high: float, **extra: object) -> MetricResult:
    values: dict[str, object] = {"label": label, "mean": mean, "low": low, "high": high, "n": 4, "n_na": 0}
    values.update(extra)
    return MetricResult(**values)  # type: ignore[arg-type]


def _cost(cost_per_1k: float | None) -> CostResult:
    return CostResult(
        questions=4,
        prompt_tokens_mean=40.0,
        completion_tokens_mean=8.0,
        model_calls_mean=1.0,
        latency_p50_s=0.2,
        latency_p95_s=0.35,
        cost_per_1k_questions=cost_per_1k,
        price_source="prices.yaml: local-gpu" if cost_per_1k is not None else "no price for this model",
        cached_items=1,
    )


def make_run() -> RunResult:
    prompt = StrategyResult(
        strategy="prompt",
        config={"name": "prompt"},
        config_hash="aaaa1111",
        model_id="qwen2.5-coder-0.5b",
        metrics={
            "token_f1": _metric("token_f1", 0.45, 0.30, 0.60, n=3, n_na=1, threshold=0.6, passed=False),
            "faithfulness": _metric(
                "faithfulness", 0.5, 0.4, 0.6, n=1, n_na=3, na_reasons={"judge parse failure": 3}
            ),
        },
        breakdown={
            "category": {"history": GroupResult("history", 0.2, 2, 0), "科学": GroupResult("科学", 0.7, 1, 1)}
        },
        breakdown_metric="token_f1",
        cost=_cost(None),
    )
    rag = StrategyResult(
        strategy="rag",
        config={"name": "rag", "top_k": 4},
        config_hash="bbbb2222",
        model_id="qwen2.5-coder-0.5b",
        metrics={
            "token_f1": _metric("token_f1", 0.72, 0.61, 0.83, threshold=0.6, passed=True),
            "faithfulness": _metric("faithfulness", 0.8, 0.7, 0.9),
        },
        breakdown={
            "category": {"history": GroupResult("history", 0.8, 2, 0), "科学": GroupResult("科学", 0.6, 2, 0)}
        },
        breakdown_metric="token_f1",
        cost=_cost(0.0123),
    )
    records = [
        _record("prompt", "good-1", 0.9),
        _record("prompt", "bad-2", 0.1, user_input=CHINESE, response=HOSTILE, tags=["generated"]),
        _record("prompt", "na-3", None, reason="missing reference", reference=None),
        _record("prompt", "mid-4", 0.5, retrieved_contexts=[LONG_CONTEXT, "see https://example.com/doc"]),
        _record("rag", "good-1", 0.95),
        _record("rag", "bad-2", 0.4, cached=True),
        _record("rag", "na-3", 0.7),
        _record("rag", "mid-4", 0.83),
    ]
    return RunResult(
        run_id="run-20240501-abc",
        suite="demo-qa",
        suite_path="datasets/suites/demo_qa.yaml",
        kind="qa",
        status=COMPLETE,
        created="2024-05-01T10:00:00+00:00",
        finished="2024-05-01T10:02:05+00:00",
        model="qwen2.5-coder-0.5b",
        judge=None,
        strategies=[prompt, rag],
        comparisons=[
            Comparison("token_f1", "rag", "prompt", 0.27, 0.10, 0.40, 0.003, 4, "paired bootstrap"),
            Comparison("faithfulness", "rag", "prompt", 0.02, -0.05, 0.09, 0.41, 1, "paired bootstrap"),
        ],
        records=records,
        thresholds={"token_f1": 0.6},
        failures=["prompt: token_f1 0.450 (95% CI [0.300, 0.600]) is below the threshold ≥ 0.600"],
        wall_s=125.0,
        model_calls=6,
    )


# ---- Markdown -----------------------------------------------------------------------------
def test_markdown_header_summary_cost_and_comparisons() -> None:
    md = render_markdown(make_run())
    assert md.startswith("# Ladder evaluation: demo-qa")
    assert "run-20240501-abc" in md
    assert "complete, 1 threshold missed" in md
    assert "no judge (deterministic metrics only)" in md
    assert "2 min 05 s" in md
    assert "6 made in this run; 2 items from the cache" in md
    # The summary row for prompt: mean, CI, counts and the missed threshold.
    prompt_row = next(line for line in md.splitlines() if line.startswith("| prompt |"))
    assert "0.450 [0.300, 0.600] (n=3, n/a 1) ❌ ≥ 0.600" in prompt_row
    rag_row = next(line for line in md.splitlines() if line.startswith("| rag |"))
    assert "0.720 [0.610, 0.830] (n=4) ✅ ≥ 0.600" in rag_row
    assert "prompt / faithfulness: 3 × judge parse failure" in md
    assert "token_f1 (main)" in md
    # Cost: a known price and an unknown one, with where the price came from.
    assert "0.0123 USD" in md and "prices.yaml: local-gpu" in md
    assert "no price for this model" in md
    assert "| 0.200 s | 0.350 s |" in md
    # Comparisons in plain words.
    assert "rag is better than prompt on token_f1 by 0.270 (95% CI 0.100..0.400, p=0.003)" in md
    assert "no significant difference between rag and prompt on faithfulness" in md
    # Breakdown, failures.
    assert "## token_f1 by category" in md
    assert "| 科学 | 0.700 (n=1, n/a 1) | 0.600 (n=2) |" in md
    assert "## Failures" in md and "- ❌ prompt: token_f1 0.450" in md


def test_markdown_drill_down_puts_worst_first_and_escapes_user_text() -> None:
    md = render_markdown(make_run())
    prompt_part = md[md.index("### prompt") : md.index("### rag")]
    # n/a first (with its reason), then ascending token_f1: 0.1 < 0.5 < 0.9.
    positions = [prompt_part.index(f"`{item}`") for item in ("na-3", "bad-2", "mid-4", "good-1")]
    assert positions == sorted(positions)
    assert "token_f1 n/a (missing reference)" in prompt_part
    assert "🤖 generated" in prompt_part.split("`bad-2`")[1].split("\n")[0]
    assert "🤖 generated" not in prompt_part.split("`good-1`")[1].split("\n")[0]
    assert CHINESE in md
    assert "<script>" not in md
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt;" in md
    assert "(+700 chars)" in md and "x" * 299 not in md
    rag_part = md[md.index("### rag") :]
    assert rag_part.index("`bad-2`") < rag_part.index("`na-3`") < rag_part.index("`good-1`")


def test_worst_limits_the_drill_down() -> None:
    md = render_markdown(make_run(), worst=2)
    prompt_part = md[md.index("### prompt") : md.index("### rag")]
    assert "2 of 4 items" in prompt_part
    # One slot for the n/a item, one for the worst scored item; the better ones are left out.
    assert "`na-3`" in prompt_part and "`bad-2`" in prompt_part
    assert "`good-1`" not in prompt_part and "`mid-4`" not in prompt_part


# ---- HTML ---------------------------------------------------------------------------------
def test_html_is_self_contained_escaped_and_has_charts() -> None:
    page = render_html(make_run())
    assert page.startswith("<!DOCTYPE html>")
    # A chart per metric and one for the category breakdown, all inline.
    assert page.count("<svg") == 3
    assert "token_f1 by category" in page
    assert "threshold 0.600" in page
    # No script at all, the user's script only as text, and nothing fetched from elsewhere.
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page) and "@import" not in page
    assert "see https://example.com/doc" in page  # user text, shown, not linked
    assert CHINESE in page
    assert "no judge (deterministic metrics only)" in page
    assert "rag is better than prompt on token_f1 by 0.270" in page
    assert "3 × judge parse failure" in page
    assert "✗ FAIL" in page and "✓ pass" in page


def test_html_drill_down_order_and_details() -> None:
    page = render_html(make_run())
    assert page.count('<details class="item">') == 8
    prompt_part = page[page.index("<h3>prompt") : page.index("<h3>rag")]
    positions = [prompt_part.index(f"<code>{item}</code>") for item in ("na-3", "bad-2", "mid-4", "good-1")]
    assert positions == sorted(positions)
    assert "token_f1 n/a (missing reference)" in prompt_part
    bad = prompt_part[prompt_part.index("<code>bad-2</code>") : prompt_part.index("<code>mid-4</code>")]
    assert '<span class="tag gen">generated</span>' in bad
    assert '<span class="tag gen">' not in prompt_part[prompt_part.index("<code>good-1</code>") :]
    assert "(+700 chars)" in page


def test_html_of_a_failed_run_shows_the_error() -> None:
    run = dataclasses.replace(make_run(), status=FAILED, error="backend unreachable: <http://gpu-box:8000>")
    page = render_html(run)
    assert 'class="badge bad">failed<' in page
    assert "backend unreachable: &lt;http://gpu-box:8000&gt;" in page


# ---- JSON ---------------------------------------------------------------------------------
def test_json_round_trips_and_keeps_chinese() -> None:
    run = make_run()
    text = render_json(run)
    assert CHINESE in text  # ensure_ascii=False
    assert text.startswith('{\n  "run_id"')
    back = RunResult.from_dict(json.loads(text))
    assert back == run
    assert back.strategies[0].metrics["token_f1"].passed is False
    assert back.records[1].scores["token_f1"] == ItemScore(0.1, "")


# ---- JUnit --------------------------------------------------------------------------------
def test_junit_counts_failures_with_value_ci_and_threshold() -> None:
    root = ET.fromstring(render_junit(make_run()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "0")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"prompt", "rag"}
    prompt = suites["prompt"]
    assert (prompt.get("tests"), prompt.get("failures"), prompt.get("errors")) == ("2", "1", "0")
    failure = prompt.find("testcase[@name='token_f1 ≥ 0.600']/failure")
    assert failure is not None
    assert failure.get("message") == (
        "token_f1 0.450 (95% CI [0.300, 0.600], n=3) is below the threshold ≥ 0.600"
    )
    # The metric without a threshold passes and reports its value.
    faith = prompt.find("testcase[@name='faithfulness']")
    assert faith is not None and faith.find("failure") is None
    out = faith.find("system-out")
    assert out is not None and out.text is not None
    assert "faithfulness = 0.500" in out.text and "3 × judge parse failure" in out.text
    assert suites["rag"].get("failures") == "0"
    assert suites["rag"].find("testcase/failure") is None


def test_junit_for_a_failed_run_has_an_error_case() -> None:
    run = dataclasses.replace(make_run(), status=FAILED, error="backend unreachable", failures=[])
    for strategy in run.strategies:
        for metric in strategy.metrics.values():
            metric.passed = None if metric.threshold is None else True
    root = ET.fromstring(render_junit(run))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "0", "1")
    error = root.find("testsuite[@name='run']/testcase[@name='run']/error")
    assert error is not None and error.get("message") == "backend unreachable"


# ---- write_report -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("r.md", "# Ladder evaluation"),
        ("r.html", "<!DOCTYPE html>"),
        ("R.HTM", "<!DOCTYPE html>"),
        ("r.json", "{"),
        ("out/r.xml", '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites'),
    ],
)
def test_write_report_picks_the_format_by_suffix(tmp_path: Path, name: str, start: str) -> None:
    written = write_report(make_run(), tmp_path / name)
    assert written == tmp_path / name
    assert written.read_text(encoding="utf-8").startswith(start)


def test_write_report_refuses_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        write_report(make_run(), tmp_path / "report.pdf")
    assert "'.pdf'" in caught.value.message
    assert caught.value.hint is not None
    assert all(s in caught.value.hint for s in (".md", ".html", ".htm", ".json", ".xml"))
    assert not (tmp_path / "report.pdf").exists()


# ---- the shared rules ---------------------------------------------------------------------
def test_main_metric_rules() -> None:
    run = make_run()
    assert main_metric(run) == "token_f1"
    no_thresholds = dataclasses.replace(run, thresholds={})
    no_thresholds.strategies[0].metrics = {"faithfulness": run.strategies[0].metrics["faithfulness"]}
    assert main_metric(no_thresholds) == "faithfulness"
    mcq = dataclasses.replace(no_thresholds, kind="mcq")
    mcq.strategies[0].metrics["accuracy"] = _metric("accuracy", 0.5, 0.4, 0.6)
    assert main_metric(mcq) == "accuracy"


def test_mcq_run_shows_the_mode_and_the_choices() -> None:
    run = dataclasses.replace(make_run(), kind="mcq", mode="logprob", judge="qwen2.5-coder-1.5b")
    run.records[1].choices = ["北京", "上海", "<b>广州</b>", "深圳"]
    md = render_markdown(run)
    assert "| **MCQ mode** | logprob |" in md
    assert "| **Judge** | qwen2.5-coder-1.5b |" in md and "no judge" not in md
    assert "- A. 北京\n- B. 上海\n- C. &lt;b&gt;广州&lt;/b&gt;\n- D. 深圳" in md
    page = render_html(run)
    assert '<ol type="A"><li>北京</li><li>上海</li><li>&lt;b&gt;广州&lt;/b&gt;</li><li>深圳</li></ol>' in page
    assert "<dt>MCQ mode</dt><dd>logprob</dd>" in page
    assert "MCQ mode" not in render_markdown(make_run())


def test_worst_items_for_a_lower_is_better_metric() -> None:
    records = [_record("prompt", f"i{i}", v) for i, v in enumerate([0.1, 0.9, None, 0.5])]
    worst = worst_items(records, "token_f1", 3, higher_better=False)
    assert [w.record.item_id for w in worst] == ["i2", "i1", "i3"]
    assert worst[0].value is None and worst[0].reason == "no reason given"
    best_first = worst_items(records, "token_f1", 4, higher_better=True)
    assert [w.record.item_id for w in best_first] == ["i2", "i0", "i3", "i1"]


def test_comparison_reading_names_the_winner_and_flips_the_interval() -> None:
    b_wins = Comparison("accuracy", "rag", "prompt", -0.12, -0.19, -0.05, 0.0004, 100, "McNemar exact")
    assert comparison_reading(b_wins) == (
        "prompt is better than rag on accuracy by 0.120 (95% CI 0.050..0.190, p<0.001)"
    )
    # For a lower-is-better metric the smaller value wins.
    assert comparison_reading(b_wins, higher_better=False).startswith("rag is better than prompt")
    unclear = Comparison("accuracy", "rag", "prompt", 0.03, -0.02, 0.08, 0.2, 100, "McNemar exact")
    assert comparison_reading(unclear).startswith("no significant difference")
    empty = Comparison("accuracy", "rag", "prompt", None, None, None, None, 0, "paired bootstrap")
    assert "cannot be compared" in comparison_reading(empty)


def test_large_run_keeps_the_drill_down_short() -> None:
    run = make_run()
    run.records = [
        _record(s, f"item-{i}", (i * 37 % 1000) / 1000) for s in ("prompt", "rag") for i in range(5000)
    ]
    page = render_html(run, worst=20)
    assert page.count('<details class="item">') == 40
    assert "20 of 5,000 items" in page
    # The worst prompt items are the ones scored 0.000 (i = 0, 1000, ...), in suite order.
    prompt_part = page[page.index("<h3>prompt") : page.index("<h3>rag")]
    assert re.findall(r"<code>(item-\d+)</code>", prompt_part)[:3] == ["item-0", "item-1000", "item-2000"]
    md = render_markdown(run, worst=5)
    assert md.count("#### ") == 10
