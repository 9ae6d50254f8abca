"""Judge prompts in the item's language, the reply schema the judge asks for, and the
embedding model judged metrics use (with the English-only warning on Chinese items)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from assistant.backends.fake import FakeBackend
from assistant.settings import load_settings
from evaluation.metrics.judge import Judge, run_sync
from evaluation.metrics.judge_prompts import ENGLISH_ONLY_EMBEDDER, item_language
from evaluation.metrics.judged import AnswerRelevancy, ContextPrecision, Faithfulness

EN: dict[str, Any] = {
    "user_input": "Can I get a refund for a digital gift card?",
    "response": "No, digital gift cards cannot be refunded.",
    "retrieved_contexts": ["Digital gift cards cannot be refunded once delivered."],
    "reference": "No.",
}
ZH: dict[str, Any] = {
    "user_input": "员工每年可以休几天带薪病假？",
    "response": "5天",
    "retrieved_contexts": ["员工每年享有5天带薪病假。"],
    "reference": "每年5天带薪病假。",
}
STATEMENTS = json.dumps({"statements": ["s1"]})
VERDICTS = json.dumps({"statements": [{"statement": "s1", "reason": "r", "verdict": 1}]})


def fake_judge(*replies: str, **options: Any) -> tuple[Judge, FakeBackend]:
    backend = FakeBackend(replies, model_id="fake-judge")
    return Judge(backend, **options), backend


def prompts(backend: FakeBackend) -> list[str]:
    return [conversation[-1].content for conversation, _ in backend.calls]


def test_the_item_language_is_that_of_its_question_and_answer() -> None:
    assert item_language(ZH) == "zh"
    assert item_language(EN) == "en"
    # The context metrics have no response: the reference stands for the answer.
    assert item_language({"user_input": "什么是年假？", "reference": "带薪休假。"}) == "zh"


def test_a_chinese_item_gets_chinese_prompts_and_an_english_item_ragas_own() -> None:
    from ragas.metrics.collections.faithfulness.util import (
        NLIStatementInput,
        NLIStatementPrompt,
        StatementGeneratorInput,
        StatementGeneratorPrompt,
    )

    judge, backend = fake_judge(STATEMENTS, VERDICTS, STATEMENTS, VERDICTS)
    scores = Faithfulness().score_many([EN, ZH], judge)
    assert [s.value for s in scores] == [1.0, 1.0]
    en_split, en_verdicts, zh_split, zh_verdicts = prompts(backend)
    # English: byte for byte the prompt ragas renders.
    assert en_split == StatementGeneratorPrompt().to_string(
        StatementGeneratorInput(question=EN["user_input"], answer=EN["response"])
    )
    assert en_verdicts == NLIStatementPrompt().to_string(
        NLIStatementInput(context=EN["retrieved_contexts"][0], statements=["s1"])
    )
    # Chinese: instruction, examples and frame in Chinese, the same JSON keys.
    assert "拆成一个或多个可以独立理解的陈述" in zh_split and "Break down" not in zh_split
    assert "示例 1" in zh_split and '"statements"' in zh_split and "5天" in zh_split
    assert "能从上下文直接推断出来" in zh_verdicts and "Your task" not in zh_verdicts
    assert '"verdict"' in zh_verdicts and ZH["retrieved_contexts"][0] in zh_verdicts


def test_ragas_prompts_for_every_item_when_localized_prompts_are_off() -> None:
    judge, backend = fake_judge(json.dumps({"reason": "r", "verdict": 1}), localized_prompts=False)
    [score] = ContextPrecision().score_many([ZH], judge)
    assert score.value == pytest.approx(1.0)
    [prompt] = prompts(backend)
    assert prompt.startswith("Given question, answer and context verify if the context was useful")


def test_every_chinese_prompt_keeps_ragas_reply_model_and_its_examples_fit_it() -> None:
    from evaluation.metrics.judge_prompts.zh import CHINESE

    assert len(CHINESE) == 7  # the prompts of the five judged metrics
    for ragas_class, chinese_class in CHINESE.items():
        assert issubclass(chinese_class, ragas_class)
        chinese = chinese_class()
        assert chinese.output_model is ragas_class.output_model
        assert item_language({"user_input": chinese.instruction}) == "zh"
        assert chinese.examples
        for given, wanted in chinese.examples:
            assert isinstance(given, ragas_class.input_model)
            # What the prompt shows as an example reply parses back into the reply model.
            assert chinese.output_model.model_validate_json(wanted.model_dump_json(indent=4)) == wanted


def test_the_judge_asks_for_the_reply_model_schema_unless_told_not_to() -> None:
    from ragas.metrics.collections.faithfulness.util import NLIStatementOutput, StatementGeneratorOutput

    judge, backend = fake_judge(STATEMENTS, VERDICTS)
    Faithfulness().score_many([EN], judge)
    assert backend.schemas == [
        StatementGeneratorOutput.model_json_schema(),
        NLIStatementOutput.model_json_schema(),
    ]
    judge, backend = fake_judge(STATEMENTS, VERDICTS, constrained=False)
    Faithfulness().score_many([EN], judge)
    assert backend.schemas == [None, None]


# ---- the embedding model -----------------------------------------------------------------
def write_model_card(folder: Path, languages: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]", encoding="utf-8")
    (folder / "README.md").write_text(f"---\nlanguage: {json.dumps(languages)}\n---\n", encoding="utf-8")
    return folder


def write_kb(name: str, model: Path, settings: Any) -> None:
    from assistant.knowledge.index import kb_folder

    folder = kb_folder(name, settings)
    folder.mkdir(parents=True)
    meta = {"name": name, "embedding_model": str(model), "embedding_languages": ["zh", "en"]}
    (folder / "kb.json").write_text(json.dumps(meta), encoding="utf-8")


def test_the_knowledge_base_embedding_model_serves_the_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assistant.knowledge.embeddings as embeddings

    settings = load_settings({})
    multilingual = write_model_card(tmp_path / "multilingual", ["zh", "en"])
    write_kb("docs", multilingual, settings)
    loaded: list[str] = []
    monkeypatch.setattr(embeddings, "load_sentence_model", lambda path, device=None: loaded.append(str(path)))

    with_kb = Judge.from_settings("fake", settings, kb="docs")
    assert with_kb.embedding_model == str(multilingual) and not with_kb.english_only_embeddings
    with_kb.encoder  # noqa: B018  (loads it)
    assert loaded == [str(multilingual)]

    # No knowledge base: the settings' model, here the packaged English-only MiniLM.
    plain = Judge.from_settings("fake", settings)
    assert plain.embedding_model == embeddings.PACKAGED_EMBEDDING and plain.english_only_embeddings


def test_an_english_only_embedder_on_a_chinese_item_warns_in_the_detail_and_once_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reply = json.dumps({"question": "员工每年可以休几天带薪病假？", "noncommittal": 0})

    class Encoder:
        def encode(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0] for _ in texts]

    backend = FakeBackend([reply] * 3, model_id="fake-judge")
    judge = Judge(
        backend, Encoder(), embedding_model="packaged:all-MiniLM-L6-v2", english_only_embeddings=True
    )
    metric = judge.prepare_metric(AnswerRelevancy().build(judge))
    with caplog.at_level(logging.WARNING, logger="evaluation.metrics.judge"):
        zh_first = run_sync(metric.ascore(user_input=ZH["user_input"], response=ZH["response"]))
        zh_second = run_sync(metric.ascore(user_input=ZH["user_input"], response="每年5天。"))
        en = run_sync(metric.ascore(user_input=EN["user_input"], response=EN["response"]))
    warning = ENGLISH_ONLY_EMBEDDER.format(model="packaged:all-MiniLM-L6-v2")
    assert zh_first.value == pytest.approx(1.0)
    assert zh_first.detail == {"judge_prompt": "zh", "warning": warning}
    assert zh_second.detail["warning"] == warning
    assert en.detail == {}
    logged = [r.getMessage() for r in caplog.records if "English-only" in r.getMessage()]
    assert len(logged) == 1 and "packaged:all-MiniLM-L6-v2" in logged[0]


def test_a_metric_that_does_not_embed_gets_no_embedder_warning() -> None:
    backend = FakeBackend([STATEMENTS, VERDICTS], model_id="fake-judge")
    judge = Judge(backend, embedding_model="packaged:all-MiniLM-L6-v2", english_only_embeddings=True)
    metric = judge.prepare_metric(Faithfulness().build(judge))
    result = run_sync(metric.ascore(**{k: ZH[k] for k in ("user_input", "response", "retrieved_contexts")}))
    assert result.detail == {"judge_prompt": "zh"}


def test_the_cache_identity_changes_with_prompts_replies_and_embedder() -> None:
    backend = FakeBackend(model_id="fake-judge")
    identities = {
        Judge(backend, embedding_model="packaged:all-MiniLM-L6-v2").cache_identity(),
        Judge(backend, embedding_model="packaged:all-MiniLM-L6-v2", localized_prompts=False).cache_identity(),
        Judge(backend, embedding_model="packaged:all-MiniLM-L6-v2", constrained=False).cache_identity(),
        Judge(backend, embedding_model="/models/multilingual").cache_identity(),
    }
    assert len(identities) == 4
    assert all(identity.startswith("fake-judge ") for identity in identities)
    assert Judge(backend).cache_identity() == Judge(FakeBackend(model_id="fake-judge")).cache_identity()


def test_a_bad_embedding_model_setting_is_raised_only_when_a_metric_embeds(tmp_path: Path) -> None:
    from assistant.errors import ModelNotFoundError

    judge = Judge.from_settings("fake", load_settings({"embedding_model": str(tmp_path / "nothing")}))
    with pytest.raises(ModelNotFoundError, match="not a sentence-transformers folder"):
        judge.encoder  # noqa: B018


def test_the_runner_gives_the_judge_the_first_knowledge_base_its_lanes_name() -> None:
    from types import SimpleNamespace

    from evaluation.runner import lanes_kb

    lanes = [
        SimpleNamespace(config={"strategy": "prompt"}),
        SimpleNamespace(config={"strategy": "rag", "kb": "hr"}),
    ]
    assert lanes_kb(lanes) == "hr"
    assert lanes_kb(lanes[:1]) is None


def test_a_chinese_items_score_says_which_prompts_judged_it() -> None:
    import json as _json

    from assistant.backends.fake import FakeBackend
    from evaluation.metrics.judge import Judge
    from evaluation.metrics.judged import Faithfulness

    replies = [
        _json.dumps({"statements": ["年假5天"]}),
        _json.dumps({"statements": [{"statement": "年假5天", "reason": "上下文", "verdict": 1}]}),
    ]
    judge = Judge(FakeBackend(replies, model_id="fake-judge"))
    sample = {"user_input": "年假几天？", "response": "5天", "retrieved_contexts": ["员工每年享有5天年假。"]}
    [score] = Faithfulness().score_many([sample], judge)
    assert score.value == 1.0 and score.detail["judge_prompt"] == "zh"
