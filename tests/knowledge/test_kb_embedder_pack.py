"""Knowledge bases on an embedder pack: the multilingual pack is the default for a new
knowledge base, its query/passage prefixes are recorded and added, a knowledge base keeps the
model it was built with, and a missing pack is a one-line error with the pull command.

A tiny E5S1 model (``tests/models/tiny_e5.py``) stands in for multilingual-e5-small: a user
catalog entry of the same name points at a carrier wheel the test builds itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from assistant.errors import ModelNotFoundError
from assistant.knowledge import KnowledgeBase
from assistant.knowledge.embeddings import DEFAULT_EMBEDDER_PACK, load_sentence_model
from assistant.models import pull
from assistant.models.refs import parse_model_ref
from assistant.settings import Settings, load_settings
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.helpers.tiny_gguf import build_carrier_wheels
from tests.models.tiny_e5 import H, tiny_e5_bytes


@pytest.fixture
def pack_settings(isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with no embedding_model set (the default pack), whose catalog's
    multilingual-e5-small is a tiny model in a local wheel (not pulled yet)."""
    monkeypatch.delenv("LADDER_EMBEDDING_MODEL")
    data = tiny_e5_bytes()
    wheel_dir = tmp_path / "index"
    ((requirement, member),) = build_carrier_wheels(data, wheel_dir, "tiny-e5-carrier", "1.0.0", 1)
    entry = {
        "name": DEFAULT_EMBEDDER_PACK, "description": "tiny stand-in",
        "parts": [{"requirement": requirement, "member": member}],
        "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
        "gguf_name": "tiny-e5.bin", "upstream": "tests/tiny-e5", "license": "MIT",
        "languages": ["multilingual", "zh", "en"], "kind": "embedder", "converter": "e5s1",
        "dimension": H, "prompts": {"query": "query: ", "passage": "passage: "},
    }  # fmt: skip
    catalog = tmp_path / "packs.yaml"
    catalog.write_text(yaml.safe_dump([entry], allow_unicode=True), encoding="utf-8")
    config = {"catalog_file": str(catalog), "pip_find_links": str(wheel_dir), "pip_no_index": True}
    (isolated_home).mkdir(parents=True, exist_ok=True)
    (isolated_home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings()


def test_a_new_knowledge_base_uses_the_pack_and_its_prefixes(pack_settings: Settings) -> None:
    folder = pull.pull_pack(DEFAULT_EMBEDDER_PACK, pack_settings)
    kb = KnowledgeBase.create("docs", pack_settings)
    assert kb.meta["embedding_model"] == f"pack:{DEFAULT_EMBEDDER_PACK}"
    assert kb.meta["embedding_prompts"] == {"query": "query: ", "passage": "passage: "}
    Path("a.txt").write_text("The warehouse ships orders before noon.", encoding="utf-8")
    assert kb.add([Path("a.txt")]).ok
    model = load_sentence_model(folder)
    stored = kb.collection.get(include=["embeddings", "documents"])
    text = stored["documents"][0]
    expected = model.encode(["passage: " + text], normalize_embeddings=True)[0]
    bare = model.encode([text], normalize_embeddings=True)[0]
    # (bfloat16 on a CPU where it is faster: this tiny random model keeps a cosine of about 0.999
    # to its float32 vector, the real e5 0.99997)
    vector = np.asarray(stored["embeddings"][0])
    assert float(vector @ expected) > 0.998, "stored with the passage prefix"
    assert float(vector @ expected) > float(vector @ bare) + 1e-3, "the prefix changes the vector"
    hit = kb.search("when do orders ship", k=1, mode="dense")[0]
    query = model.encode(["query: when do orders ship"], normalize_embeddings=True)[0]
    bare_query = model.encode(["when do orders ship"], normalize_embeddings=True)[0]
    assert hit.dense_score == pytest.approx(float(query @ vector), abs=2e-3), "query prefix"
    assert abs(hit.dense_score - float(bare_query @ vector)) > abs(hit.dense_score - float(query @ vector))
    # The cosine scale of the model is measured once and recorded for every pair of languages.
    scale = json.loads((kb.folder / "kb.json").read_text())["embedding_cosine_scale"]
    assert set(scale) == {"en-en", "en-zh", "zh-en", "zh-zh"}
    assert all(low < high for low, high in scale.values())
    kb.close()


def test_a_missing_pack_is_a_one_line_error_with_the_pull_command(
    pack_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelNotFoundError, match="not installed") as caught:
        KnowledgeBase.create("docs", pack_settings)
    assert f"ladder models pull {DEFAULT_EMBEDDER_PACK}" in str(caught.value.hint)
    assert not (pack_settings.kb_dir / "docs").exists(), "nothing half-written"
    code, _, err = run(["kb", "create", "docs"], capsys)
    assert code == 3 and f"ladder models pull {DEFAULT_EMBEDDER_PACK}" in err
    assert "Traceback" not in err
    # A knowledge base built on the pack, whose pack was removed afterwards.
    pull.pull_pack(DEFAULT_EMBEDDER_PACK, pack_settings)
    KnowledgeBase.create("docs", pack_settings).close()
    pull.remove_pack(DEFAULT_EMBEDDER_PACK, pack_settings)
    code, _, err = run(["kb", "search", "docs", "anything"], capsys)
    assert code == 3 and f"ladder models pull {DEFAULT_EMBEDDER_PACK}" in err
    code, _, _ = run(["kb", "search", "docs", "anything", "--mode", "bm25"], capsys)
    assert code == 0, "BM25 needs no embedding model"


def test_an_existing_knowledge_base_keeps_its_model(
    pack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_EMBEDDING_MODEL", "all-MiniLM-L6-v2")
    KnowledgeBase.create("old", load_settings()).close()
    monkeypatch.delenv("LADDER_EMBEDDING_MODEL")
    Path("a.txt").write_text("Annual leave is fifteen days.", encoding="utf-8")
    # The default is now the pack (not installed here), but the old base needs only MiniLM.
    with KnowledgeBase.open("old", load_settings()) as kb:
        assert kb.meta["embedding_model"] == "packaged:all-MiniLM-L6-v2"
        assert kb.add([Path("a.txt")]).ok
        assert kb.search("annual leave", k=1)[0].dense_score is not None
        assert kb.prompts() == {}, "MiniLM has no prefixes"


def test_an_embedder_pack_is_no_language_model(pack_settings: Settings) -> None:
    with pytest.raises(ModelNotFoundError, match="embedder pack, not a language model"):
        parse_model_ref(DEFAULT_EMBEDDER_PACK, pack_settings)
