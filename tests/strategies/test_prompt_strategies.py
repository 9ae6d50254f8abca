from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.errors import ConfigError
from assistant.service import answer_questions, build_strategy
from assistant.settings import Settings
from assistant.strategies.base import (
    Strategy,
    StrategyCost,
    parse_config,
    register_strategy,
    strategy_class,
    strategy_names,
)
from assistant.strategies.prompt import FewShotStrategy, LexicalIndex
from assistant.types import Question

POOL = [
    {"user_input": "What is the capital of France?", "reference": "Paris"},
    {"user_input": "长城在哪个国家？", "reference": "中国"},
    {"user_input": "What is 2 + 2?", "reference": "4"},
    {"user_input": "Who wrote Hamlet?", "reference": "Shakespeare"},
]


def test_registry_order_and_duplicates() -> None:
    assert strategy_names()[:5] == ["prompt", "fewshot", "reflection", "rag", "agent"]
    with pytest.raises(KeyError, match="already registered"):
        register_strategy("rag", "x:Y")
    with pytest.raises(ConfigError, match="unknown strategy 'magic'"):
        strategy_class("magic")


def test_zero_shot_builds_system_template_and_format(fast_settings: Settings) -> None:
    fake = FakeBackend(["B"])
    strategy = build_strategy(
        {"strategy": "prompt", "system_prompt": "You grade exams.", "answer_template": "Q: {question}",
         "output_format": "Answer with a single letter.", "max_new_tokens": 5},
        fast_settings, backend=fake,
    )  # fmt: skip
    assert isinstance(strategy, Strategy)
    answer = strategy.answer([Question("Which is a fruit?", choices=["car", "apple"])])[0]
    conversation, params = fake.calls[0]
    assert [m.role for m in conversation] == ["system", "user"]
    assert conversation[0].content == "You grade exams."
    assert conversation[1].content == "Q: Which is a fruit?\nA. car\nB. apple\n\nAnswer with a single letter."
    assert params.max_new_tokens == 5 and params.greedy
    assert answer.response == "B" and answer.usage.model_calls == 1
    assert answer.trace.steps[0].kind == "generate"


def test_json_schema_becomes_an_instruction(fast_settings: Settings) -> None:
    fake = FakeBackend(['{"label": "spam"}'])
    schema = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}}, "required": ["label"]}
    build_strategy({"strategy": "prompt", "json_schema": schema}, fast_settings, backend=fake).answer(
        [Question("x")]
    )
    user_text = fake.calls[0][0][-1].content
    assert "JSON schema" in user_text and json.dumps(schema) in user_text


def test_config_errors_name_the_key(fast_settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"unknown key.*temprature"):
        build_strategy({"strategy": "prompt", "temprature": 0.2}, fast_settings, backend=FakeBackend())
    with pytest.raises(ConfigError, match="must contain"):
        build_strategy(
            {"strategy": "prompt", "answer_template": "no slot"}, fast_settings, backend=FakeBackend()
        )
    with pytest.raises(ConfigError, match="k must be > 0"):
        build_strategy(
            {"strategy": "fewshot", "k": 0, "examples": POOL}, fast_settings, backend=FakeBackend()
        )
    with pytest.raises(ConfigError, match="needs `examples`"):
        build_strategy("fewshot", fast_settings, backend=FakeBackend())


def test_fixed_fewshot_puts_examples_as_turns(fast_settings: Settings) -> None:
    fake = FakeBackend(["Berlin"])
    strategy = build_strategy({"strategy": "fewshot", "k": 2, "examples": POOL}, fast_settings, backend=fake)
    strategy.answer([Question("What is the capital of Germany?")])
    conversation = fake.calls[0][0]
    # no system prompt by default: the model's own template supplies one
    assert [m.role for m in conversation] == ["user", "assistant", "user", "assistant", "user"]
    assert conversation[0].content == POOL[0]["user_input"] and conversation[1].content == "Paris"
    assert conversation[3].content == "中国"
    assert conversation[-1].content == "What is the capital of Germany?"


def test_similar_fewshot_picks_nearest_and_never_the_question(
    fast_settings: Settings, tmp_path: Path
) -> None:
    pool_file = tmp_path / "pool.jsonl"
    pool_file.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in POOL) + "\n")
    fake = FakeBackend()
    config = {"strategy": "fewshot", "k": 1, "selection": "similar", "examples_file": str(pool_file)}
    strategy = build_strategy(config, fast_settings, backend=fake)
    assert isinstance(strategy, FewShotStrategy)
    assert strategy.pick(Question("长城有多长？"))[0].reference == "中国"
    assert strategy.pick(Question("Who wrote Macbeth?"))[0].reference == "Shakespeare"
    # the question itself is in the pool: its own answer must not be shown
    assert strategy.pick(Question("What is 2 + 2?"))[0].reference != "4"


def test_examples_file_errors(fast_settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_input": "a", "reference": "b"}\n{oops\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: invalid JSON"):
        build_strategy(
            {"strategy": "fewshot", "examples_file": str(bad)}, fast_settings, backend=FakeBackend()
        )
    csv_file = tmp_path / "pool.csv"
    csv_file.write_text("question,answer\nWhat is 1+1?,2\n")
    strategy = build_strategy({"strategy": "fewshot", "examples_file": str(csv_file)}, fast_settings,
                              backend=FakeBackend())  # fmt: skip
    assert isinstance(strategy, FewShotStrategy) and strategy.pool[0].reference == "2"


def test_costs_order_prompt_below_fewshot(fast_settings: Settings) -> None:
    prompt = build_strategy("prompt", fast_settings, backend=FakeBackend()).cost()
    fewshot = build_strategy({"strategy": "fewshot", "k": 3, "examples": POOL}, fast_settings,
                             backend=FakeBackend()).cost()  # fmt: skip
    assert isinstance(prompt, StrategyCost)
    assert prompt.model_calls == fewshot.model_calls == 1
    assert fewshot.prompt_tokens > prompt.prompt_tokens


def test_batched_answers_keep_order_and_ids(fast_settings: Settings) -> None:
    questions = [Question(f"q{i}", id=f"id{i}") for i in range(5)]
    answers = answer_questions(questions, "prompt", settings=fast_settings, backend=FakeBackend())
    assert [a.question_id for a in answers] == [f"id{i}" for i in range(5)]
    assert [a.response for a in answers] == [f"[fake] q{i}" for i in range(5)]


def test_strategy_yaml_file_and_flag_overrides(fast_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("strategy: prompt\nsystem_prompt: from file\nmax_new_tokens: 9\n")
    fake = FakeBackend()
    strategy = build_strategy(path, fast_settings, backend=fake, max_new_tokens=3, seed=None)
    assert strategy.config.system_prompt == "from file" and strategy.config.max_new_tokens == 3
    (tmp_path / "broken.yaml").write_text("strategy: [prompt\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: invalid YAML"):
        build_strategy(tmp_path / "broken.yaml", fast_settings, backend=fake)
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        build_strategy("nope", fast_settings, backend=fake)


def test_lexical_index_is_cjk_aware() -> None:
    index = LexicalIndex(["北京是中国的首都", "Paris is in France", "上海是一个城市"])
    assert index.rank("中国的首都是哪里")[0] == 0
    assert index.rank("france paris")[0] == 1


def test_parse_config_sets_strategy_name() -> None:
    config = parse_config(FewShotStrategy, {"strategy": "prompt", "examples": POOL})
    assert config.strategy == "fewshot"
