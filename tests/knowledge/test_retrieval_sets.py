"""The retrieval sets over the demo knowledge base (datasets/retrieval): current, sound, balanced.

The rules are checked here on their own (the knowledge base's chunker and BM25 tokenizer called
directly), not only through build.py's checker, and the checker is shown to catch a broken item.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from assistant.knowledge.ingest import chunk_file
from assistant.knowledge.store import tokenize
from tests.helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "datasets" / "retrieval"
KB = ROOT / "datasets" / "demo" / "kb"
NAMES = ("paraphrase_zh.jsonl", "en_to_zh.jsonl")


def load_build() -> ModuleType:
    return load_script(SETS / "build.py", "retrieval_build")


def read(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SETS / name).read_text(encoding="utf-8").splitlines()]


def test_the_shipped_files_are_what_build_writes() -> None:
    build = load_build()
    for name, items in build.build().items():
        assert build.render(items) == (SETS / name).read_text(encoding="utf-8"), name
    assert build.main(["--check"]) == 0


def test_build_check_fails_on_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = load_build()
    for name in NAMES:
        shutil.copy(SETS / name, tmp_path / name)
    monkeypatch.setattr(build, "HERE", tmp_path)
    assert build.main(["--check"]) == 0
    stale = tmp_path / NAMES[0]
    stale.write_text(stale.read_text(encoding="utf-8").replace("青禾", "青木", 1), encoding="utf-8")
    assert build.main(["--check"]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_each_set_has_60_items_with_the_fields(name: str) -> None:
    items = read(name)
    assert len(items) >= 60
    for item in items:
        assert set(item) == {"id", "question", "gold", "split", "lang"}
        assert set(item["gold"]) == {"source", "evidence"}
        assert item["lang"] == ("zh" if name.startswith("paraphrase") else "en")


@pytest.mark.parametrize("name", NAMES)
def test_every_evidence_is_inside_one_chunk_of_its_file_at_the_default_chunking(name: str) -> None:
    chunks: dict[str, list[str]] = {}
    for item in read(name):
        source, evidence = item["gold"]["source"], item["gold"]["evidence"]
        assert source.endswith("_zh.md")
        assert 15 <= len(evidence) <= 80, item["id"]
        assert evidence in (KB / source).read_text(encoding="utf-8"), item["id"]
        if source not in chunks:
            found, _ = chunk_file((KB / source).read_bytes(), ".md", 500, 80)
            chunks[source] = [chunk.text for chunk in found]
        assert any(evidence in chunk for chunk in chunks[source]), item["id"]


def test_paraphrase_questions_share_at_most_one_bm25_word_with_their_evidence() -> None:
    for item in read("paraphrase_zh.jsonl"):
        question = {t for t in tokenize(item["question"]) if len(t) >= 2}
        evidence = {t for t in tokenize(item["gold"]["evidence"]) if len(t) >= 2}
        assert len(question & evidence) <= 1, (item["id"], question & evidence)


def test_english_questions_have_no_cjk() -> None:
    for item in read("en_to_zh.jsonl"):
        assert not re.search("[\u3000-\u9fff\uf900-\uffef]", item["question"]), item["id"]


def test_ids_are_unique_across_both_sets() -> None:
    ids = [item["id"] for name in NAMES for item in read(name)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_balanced_and_split_by_passage(name: str) -> None:
    items = read(name)
    tune = [item for item in items if item["split"] == "tune"]
    check = [item for item in items if item["split"] == "check"]
    assert len(tune) + len(check) == len(items)
    assert 0.4 <= len(tune) / len(items) <= 0.6
    # Each demo file is one chunk at the default chunking: no gold passage on both sides.
    assert not {i["gold"]["source"] for i in tune} & {i["gold"]["source"] for i in check}


def test_the_checker_catches_a_broken_item() -> None:
    build = load_build()
    good = build.build()["paraphrase_zh.jsonl"][0]
    assert build.check_items("x", [good]) == []
    overlapping = {**good, "question": "售后热线的服务时间是每天几点？"}
    missing = {
        **good,
        "id": "pz-900",
        "gold": {"source": good["gold"]["source"], "evidence": "这句话并不在这份文件里面任何地方出现过"},
    }
    english = {**good, "id": "ez-900", "lang": "en", "question": "What is 禾小满?"}
    problems = build.check_items("x", [overlapping, missing, english, {**good}])
    assert len(problems) == 4, problems
    assert (
        "shares" in problems[0]
        and "not in" in problems[1]
        and "CJK" in problems[2]
        and "duplicate" in problems[3]
    )
