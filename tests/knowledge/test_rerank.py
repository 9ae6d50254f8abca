"""Rerankers: the LLM relevance judge (scripted scores), the CrossEncoder, the setting that picks one."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError, LadderError
from assistant.knowledge import KnowledgeBase, rerank
from assistant.knowledge.rerank import (
    CHOICES,
    CrossEncoderReranker,
    LLMReranker,
    p_yes,
    parse_reranker_setting,
    register_reranker,
    reranker_for,
)
from assistant.knowledge.retrieve import Hit
from assistant.settings import Settings, load_settings
from tests.conftest import REAL_HOME, TEST_PACK  # captured before a test moves LADDER_HOME

QUESTION = "How many days do customers have to return a product?"


def make_hits(*texts: str) -> list[Hit]:
    """Hits in retrieval order, with falling retrieval scores."""
    return [
        Hit(text=t, source=f"d{i}.md", page=None, chunk=0, score=0.9 - i / 10, chunk_id=f"c{i}")
        for i, t in enumerate(texts)
    ]


class ScriptedJudge:
    """A backend whose yes/no log-probabilities are a function of the passage; records each call."""

    model_id = "scripted"

    def __init__(self, log_yes_by_word: dict[str, float]) -> None:
        self.log_yes_by_word = log_yes_by_word
        self.calls: list[tuple[list[str], list[str]]] = []

    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]:
        self.calls.append((list(prompts), list(choices)))
        rows = []
        for prompt in prompts:
            passage = prompt.split("Passage: ", 1)[1]
            log_yes = next((v for w, v in self.log_yes_by_word.items() if w in passage), math.log(0.5))
            rows.append([log_yes, math.log(1 - math.exp(log_yes))])
        return rows


def test_llm_reranker_orders_by_p_yes_in_one_batched_call() -> None:
    judge = ScriptedJudge({"thirty": math.log(0.9), "gift": math.log(0.2), "Berlin": math.log(0.6)})
    hits = make_hits("Berlin office hours", "gift cards are final", "returns within thirty days")
    ranked = LLMReranker(judge).rerank(QUESTION, hits, k=3)
    assert [h.chunk_id for h in ranked] == ["c2", "c0", "c1"]
    assert [h.rerank_score for h in ranked] == pytest.approx([0.9, 0.6, 0.2])
    # The retrieval relevance stays: min_score is calibrated on it, not on P(yes).
    assert [h.score for h in ranked] == pytest.approx([0.7, 0.9, 0.8])
    assert len(judge.calls) == 1
    prompts, choices = judge.calls[0]
    assert choices == list(CHOICES) and len(prompts) == 3
    # The question comes first, so the prompts of one query share their head.
    assert all(p.startswith(f"Question: {QUESTION}\n\nPassage: ") for p in prompts)


def test_ties_keep_the_retrieval_order() -> None:
    scores = [[-0.5, -1.0], [-2.0, -0.1], [-0.5, -1.0], [-0.5, -1.0]]
    hits = make_hits("a", "b", "c", "d")
    ranked = LLMReranker(FakeBackend(choice_scores=scores)).rerank(QUESTION, hits, k=4)
    assert [h.chunk_id for h in ranked] == ["c0", "c2", "c3", "c1"]


def test_k_and_depth_are_respected() -> None:
    judge = ScriptedJudge({"fourth": math.log(0.99), "second": math.log(0.8)})
    hits = make_hits("first", "second", "third", "fourth", "fifth")
    ranked = LLMReranker(judge, depth=3).rerank(QUESTION, hits, k=4)
    # Only the first three were read: "fourth" keeps its place after them, unscored.
    assert [h.chunk_id for h in ranked] == ["c1", "c0", "c2", "c3"]
    assert len(judge.calls[0][0]) == 3 and ranked[3].rerank_score is None
    assert [h.chunk_id for h in LLMReranker(judge, depth=3).rerank(QUESTION, make_hits("a", "b"), 1)] == [
        "c0"
    ]
    with pytest.raises(ConfigError, match="k must be > 0"):
        LLMReranker(judge).rerank(QUESTION, hits, k=0)
    assert LLMReranker(judge).rerank(QUESTION, [], k=3) == []


def test_long_passages_are_cut() -> None:
    judge = ScriptedJudge({})
    LLMReranker(judge, max_passage_chars=50).rerank(QUESTION, make_hits("x" * 500), k=1)
    assert judge.calls[0][0][0].count("x") == 50


def test_p_yes_normalizes_over_yes_and_no() -> None:
    assert p_yes(math.log(0.3), math.log(0.1)) == pytest.approx(0.75)
    assert p_yes(-1.0, -1.0) == 0.5
    assert p_yes(0.0, -2000.0) == 1.0 and p_yes(-2000.0, 0.0) == 0.0  # no overflow


def test_setting_parses_to_a_kind() -> None:
    assert parse_reranker_setting("llm") == ("llm", "")
    assert parse_reranker_setting(" llm:smollm2-135m ") == ("llm", "smollm2-135m")
    assert parse_reranker_setting("llm:openai:m@http://127.0.0.1:9/v1") == (
        "llm",
        "openai:m@http://127.0.0.1:9/v1",
    )
    assert parse_reranker_setting("/models/ms-marco") == ("cross_encoder", "/models/ms-marco")
    for bad in ("llm:", "llm:  ", "", "  "):
        with pytest.raises(ConfigError):
            parse_reranker_setting(bad)


def test_reranker_for_builds_the_named_one(settings: Settings, tiny_cross_encoder_dir: Path) -> None:
    assert reranker_for(settings) is None
    configured = reranker_for(dataclasses.replace(settings, model="fake", reranker_model="llm"))
    assert isinstance(configured, LLMReranker) and isinstance(configured.backend, FakeBackend)
    named = reranker_for(dataclasses.replace(settings, reranker_model="llm:fake"))
    assert isinstance(named, LLMReranker) and isinstance(named.backend, FakeBackend)
    assert named.backend.model_id == "fake"
    cross = reranker_for(dataclasses.replace(settings, reranker_model=str(tiny_cross_encoder_dir)))
    assert isinstance(cross, CrossEncoderReranker) and cross.path == tiny_cross_encoder_dir


def test_bad_settings_are_clear_errors(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a CrossEncoder folder") as caught:
        reranker_for(dataclasses.replace(settings, reranker_model=str(tmp_path / "missing")))
    assert caught.value.hint and "llm:<model reference>" in caught.value.hint
    with pytest.raises(LadderError, match="unknown model 'no-such-model'"):
        reranker_for(dataclasses.replace(settings, reranker_model="llm:no-such-model"))
    with pytest.raises(ConfigError, match="names no model"):
        reranker_for(dataclasses.replace(settings, reranker_model="llm:"))


def test_cross_encoder_reranker_reorders_by_its_scores(
    settings: Settings, tiny_cross_encoder_dir: Path
) -> None:
    from assistant.knowledge.embeddings import load_sentence_model

    model = load_sentence_model(tiny_cross_encoder_dir, None, cross_encoder=True)
    texts = [f"passage number {n} about returns" for n in range(6)]
    expected = model.predict([(QUESTION, t) for t in texts[:4]], show_progress_bar=False).reshape(4, -1)[
        :, -1
    ]
    ranked = CrossEncoderReranker(tiny_cross_encoder_dir, depth=4).rerank(QUESTION, make_hits(*texts), k=5)
    best_first = sorted(range(4), key=lambda i: -float(expected[i]))
    assert [h.chunk_id for h in ranked] == [f"c{i}" for i in best_first] + ["c4"]
    assert all(h.score == h.rerank_score for h in ranked[:4]) and ranked[4].rerank_score is None
    assert ranked[0].rerank_score == pytest.approx(float(max(expected)), abs=1e-5)


def test_judge_backend_is_loaded_once_without_the_float32_recheck(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Settings] = []

    def fake_build(ref: object, judge_settings: Settings) -> FakeBackend:
        built.append(judge_settings)
        return FakeBackend()

    monkeypatch.setattr("assistant.backends.load.build_backend", fake_build)
    monkeypatch.setattr(rerank, "_judges", {})
    monkeypatch.setattr("assistant.models.refs.parse_model_ref", _pack_ref)
    first = rerank.judge_backend("some-pack", settings)
    assert rerank.judge_backend("some-pack", settings) is first
    assert len(built) == 1 and built[0].score_recheck_margin == 0.0
    assert rerank.judge_backend("other-pack", settings) is not first


def _pack_ref(text: str | None, settings: Settings) -> object:
    from assistant.models.refs import ModelRef

    return ModelRef("pack", str(text), text=str(text))


def test_a_kind_is_registered_once() -> None:
    with pytest.raises(KeyError, match="already registered"):
        register_reranker("llm", LLMReranker)


def test_importing_rerankers_loads_no_heavy_library() -> None:
    code = (
        "import sys, assistant.knowledge.rerank; "
        "print([m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_real_pack_puts_the_answering_passage_first() -> None:
    from assistant.models.pull import installed_pack_dir

    real = load_settings({"home": str(REAL_HOME)})
    if installed_pack_dir(TEST_PACK, real) is None:
        pytest.skip(f"{TEST_PACK} is not installed")
    hits = make_hits(
        "The Berlin office is open from 9 am to 6 pm on weekdays.",
        "Bananas are a good source of potassium.",
        "Customers may return any product within 30 days of delivery for a full refund.",
    )
    ranked = reranker_for(dataclasses.replace(real, reranker_model=f"llm:{TEST_PACK}"))
    assert ranked is not None
    top = ranked.rerank(QUESTION, hits, k=3)
    assert top[0].chunk_id == "c2"
    assert all(h.rerank_score is not None and 0.0 < h.rerank_score < 1.0 for h in top)


def test_search_with_the_llm_reranker_keeps_relevance_and_adds_p_yes(kb: KnowledgeBase) -> None:
    """Wired into search: ``reranker_model: llm:fake`` reranks, every hit gets P(yes) in [0, 1],
    and ``score`` stays the retrieval relevance min_score is calibrated on."""
    from assistant.settings import replace

    for name, text in (("a.txt", "Annual leave is fifteen days."), ("b.txt", "The printer needs a badge.")):
        Path(name).write_text(text, encoding="utf-8")
    assert kb.add([Path("a.txt"), Path("b.txt")]).ok
    plain = {h.chunk_id: h.score for h in kb.search("annual leave", k=2, rerank=False)}
    reranking = KnowledgeBase.open("docs", replace(kb.settings, reranker_model="llm:fake"))
    hits = reranking.search("annual leave", k=2)
    assert hits and all(h.rerank_score is not None and 0.0 <= h.rerank_score <= 1.0 for h in hits)
    assert all(h.score == pytest.approx(plain[h.chunk_id]) for h in hits)
    reranking.close()
