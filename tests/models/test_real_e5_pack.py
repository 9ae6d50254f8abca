"""The real multilingual-e5-small pack, when it is installed (`ladder models pull
multilingual-e5-small`); skipped otherwise. Its tokenizer is held to the reference port of
the C segmentation on 300 zh/en/mixed strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.models.embedders.e5tokenize import segmenter_from_folder
from assistant.models.pull import installed_pack_dir
from assistant.settings import load_settings
from tests.conftest import REAL_HOME
from tests.models.e5_strings import e5_test_strings

pytestmark = pytest.mark.slow

# Where tokenizer.json and the C knowingly disagree (docs/models.md, "Embedder packs").
KNOWN_DIFFERENCES = {"", "\x00after nul"}


@pytest.fixture(scope="module")
def e5_dir() -> Path:
    folder = installed_pack_dir("multilingual-e5-small", load_settings({"home": str(REAL_HOME)}))
    if folder is None:
        pytest.skip("multilingual-e5-small is not installed (`ladder models pull multilingual-e5-small`)")
    return folder


def test_provenance(e5_dir: Path) -> None:
    info = json.loads((e5_dir / "pack.json").read_text())
    assert (info["kind"], info["dimension"], info["upstream"]) == (
        "embedder",
        384,
        "intfloat/multilingual-e5-small",
    )
    assert info["gguf_sha256"].startswith("1571fc98")


def test_tokenizer_equals_the_reference_port(e5_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(e5_dir))
    reference = segmenter_from_folder(e5_dir)
    strings = [text for text in e5_test_strings(300) if text not in KNOWN_DIFFERENCES]
    assert len(strings) >= 296
    mismatched = [text for text in strings if tokenizer(text)["input_ids"] != reference.ids(text)]
    assert mismatched == []
    # Every character of a piece is a piece of its own, so an unknown is a codepoint no piece
    # covers, which the pre-tokenizer isolates: unknowns in a row are never fused.
    pieces = reference.vocab.pieces
    assert {ch for piece in pieces for ch in piece} <= {piece for piece in pieces if len(piece) == 1}


def test_embeddings_rank_the_matching_passage_first(e5_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_dir), local_files_only=True, device="cpu")
    queries = ["如何申请年假？", "How many vacation days do employees get?", "Where is the office?"]
    passages = [
        "员工每年享有十天带薪年假，需提前一周在系统中申请。",
        "The office is at 12 Harbour Road, 3rd floor.",
        "Employees get ten paid vacation days a year.",
    ]
    q = model.encode(queries, prompt_name="query", normalize_embeddings=True)
    p = model.encode(passages, prompt_name="passage", normalize_embeddings=True)
    assert q.shape == (3, 384)
    best = (q @ p.T).argmax(axis=1).tolist()
    assert best[0] == 0 and best[1] in (0, 2) and best[2] == 1
