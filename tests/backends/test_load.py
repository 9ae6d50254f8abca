"""Model references become backends through the backend registry (``assistant.backends.load``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.backends import base
from assistant.backends.fake import FakeBackend
from assistant.backends.load import BACKEND_FOR_KIND, build_backend, load_backend
from assistant.errors import ConfigError, ModelNotFoundError
from assistant.models.refs import ModelRef, parse_model_ref
from assistant.registry import Registry
from assistant.settings import Settings
from assistant.types import GenParams, user


def test_every_kind_of_reference_has_a_registered_backend() -> None:
    assert set(BACKEND_FOR_KIND) == {"pack", "folder", "openai", "fake", "gguf"}
    assert set(BACKEND_FOR_KIND.values()) <= set(base.backend_names())


def test_the_backend_is_built_by_the_class_the_registry_names(
    fast_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[ModelRef, Settings]] = []

    class Recording:
        model_id = "recording"

        @classmethod
        def from_ref(cls, ref: ModelRef, settings: Settings) -> Any:
            built.append((ref, settings))
            return cls()

    registry: Registry[type[Any]] = Registry("backend")
    registry.register("fake", Recording)
    monkeypatch.setattr(base, "BACKENDS", registry)
    backend = load_backend("fake", fast_settings)
    assert isinstance(backend, Recording)
    assert built == [(ModelRef("fake", "", text="fake"), fast_settings)]
    with pytest.raises(KeyError, match="unknown backend 'openai_compat'"):
        load_backend("openai:m@http://127.0.0.1:9/v1", fast_settings)


def test_fake_and_fake_script(fast_settings: Settings, tmp_path: Path) -> None:
    plain = load_backend("fake", fast_settings)
    assert isinstance(plain, FakeBackend) and plain.model_id == "fake"
    assert plain.generate([user("hi")], GenParams())[0].text == "[fake] hi"
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["scripted"]), encoding="utf-8")
    scripted = load_backend(f"fake:{script}", fast_settings)
    assert isinstance(scripted, FakeBackend) and scripted.model_id == "fake:script.json"
    assert scripted.generate([user("hi")], GenParams())[0].text == "scripted"
    with pytest.raises(ConfigError, match="fake script not found"):
        load_backend(f"fake:{tmp_path / 'missing.json'}", fast_settings)


def test_openai_reference_builds_the_endpoint_client_without_connecting(fast_settings: Settings) -> None:
    from assistant.backends.openai_compat import OpenAICompatBackend

    backend = load_backend("openai:tiny@http://127.0.0.1:9/v1/", fast_settings)
    assert isinstance(backend, OpenAICompatBackend)
    assert (backend.model, backend.base_url) == ("tiny", "http://127.0.0.1:9/v1")
    assert backend.model_id == "openai:tiny@http://127.0.0.1:9/v1"


def test_a_pack_that_is_not_installed_says_how_to_get_it(fast_settings: Settings) -> None:
    with pytest.raises(ModelNotFoundError, match="model pack 'smollm2-135m' is not installed") as caught:
        load_backend("smollm2-135m", fast_settings)
    assert caught.value.hint == "run `ladder models pull smollm2-135m`"


def test_a_folder_reference_loads_that_folder_under_its_reference(
    tiny_model_dir: Path, fast_settings: Settings
) -> None:
    ref = parse_model_ref(str(tiny_model_dir), fast_settings)
    backend = build_backend(ref, fast_settings)
    assert backend.model_id == str(tiny_model_dir)
    assert backend.path == tiny_model_dir.resolve()  # type: ignore[attr-defined]
    assert backend.adapter is None  # type: ignore[attr-defined]


def test_a_gguf_reference_names_a_gguf_file(tmp_path: Path, fast_settings: Settings) -> None:
    """``gguf:<file>``: the file must exist and start with the GGUF magic; no adapter on top."""
    settings = fast_settings
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    ref = parse_model_ref(f"gguf:{good}", settings)
    assert (ref.kind, ref.target) == ("gguf", str(good.resolve()))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelNotFoundError, match="not a GGUF file"):
        parse_model_ref(f"gguf:{bad}", settings)
    with pytest.raises(ModelNotFoundError, match="no GGUF file"):
        parse_model_ref(f"gguf:{tmp_path / 'absent.gguf'}", settings)
    with pytest.raises(ConfigError, match="cannot take an adapter"):
        parse_model_ref(f"gguf:{good}+routing", settings)
