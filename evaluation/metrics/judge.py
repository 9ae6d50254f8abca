"""The LLM judge behind the judged metrics: any Ladder backend, as ragas wants to see it.

ragas 0.4.3's metric collections (``ragas.metrics.collections``) accept only its "modern"
components: an ``InstructorBaseRagasLLM`` (``agenerate(prompt, response_model)`` returning
a pydantic object) and a ``BaseRagasEmbedding``. ``llm_factory`` builds the former only
over a provider SDK client (OpenAI, Anthropic, LiteLLM), so we subclass both bases here:
ragas' prompts go through the backend's LangChain ``chat_model()`` (a local pack, an
endpoint or a fake, counted like every other call) and the replies are parsed into ragas'
own output models. ragas never builds a client of its own, so it cannot fall back to
OpenAI. (The older ``LangchainLLMWrapper`` with ``ragas.metrics.Faithfulness`` and friends
is deprecated in 0.4 and warns on every use.)

Nothing heavy is imported at module level: ragas, LangChain and sentence-transformers load
on first use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.errors import ConfigError, ModelNotFoundError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from assistant.backends.base import LLMBackend
    from assistant.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound="BaseModel")

# ragas' own default for structured output (InstructorModelArgs.max_tokens): its JSON
# replies carry a reason per statement and run long.
JUDGE_MAX_NEW_TOKENS = 1024
# Try decoding at most this many "{" / "[" positions, so a long garbage reply
# does not cost quadratic time.
_MAX_JSON_STARTS = 32


class JudgeParseError(ValueError):
    """The judge's reply is not the JSON that ragas' prompt asked for."""


@dataclass
class JudgeUsage:
    """What the judge cost: model calls and tokens, as the backend reported them."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, message: Any) -> None:
        self.calls += 1
        usage = getattr(message, "usage_metadata", None) or {}
        self.prompt_tokens += int(usage.get("input_tokens", 0))
        self.completion_tokens += int(usage.get("output_tokens", 0))


class Judge:
    """An LLM backend plus an embeddings model, wrapped for ragas' metrics.

    ``embeddings`` is a sentence-transformers model or anything with the same
    ``encode(list_of_texts) -> vectors``; ``load_embeddings`` builds one on first use, so
    a run with only LLM-judged metrics (faithfulness, context precision/recall) never
    loads it. ``concurrency`` bounds how many items are judged at once.
    """

    def __init__(
        self,
        backend: LLMBackend,
        embeddings: Any | None = None,
        *,
        load_embeddings: Callable[[], Any] | None = None,
        max_new_tokens: int = JUDGE_MAX_NEW_TOKENS,
        concurrency: int = 1,
        localized_prompts: bool = True,
        constrained: bool = True,
        embedding_model: str = "",
        english_only_embeddings: bool = False,
        embedding_prefix: str = "",
    ) -> None:
        if max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be > 0, got {max_new_tokens}")
        if concurrency <= 0:
            raise ValueError(f"concurrency must be > 0, got {concurrency}")
        self.backend = backend
        self.model_id = backend.model_id
        self.max_new_tokens = max_new_tokens
        self.concurrency = concurrency
        # Chinese items get ragas' prompts in Chinese (``judge_prompts``); off: ragas' English.
        self.localized_prompts = localized_prompts
        # Ask the backend for replies constrained to the reply model's JSON schema.
        self.constrained = constrained
        self.embedding_model = embedding_model
        self.english_only_embeddings = english_only_embeddings
        # The model's query prefix (e5's "query: "): every text the metrics compare is a
        # short statement or question, the symmetric case e5 prefixes with "query: ".
        self.embedding_prefix = embedding_prefix
        self.usage = JudgeUsage()
        self._encoder = embeddings
        self._load_embeddings = load_embeddings
        self._ragas_llm: Any = None
        self._ragas_embeddings: Any = None
        self._warned_english_only = False

    @classmethod
    def from_settings(
        cls,
        model_ref: str,
        settings: Settings,
        *,
        embeddings: Any | None = None,
        max_new_tokens: int = JUDGE_MAX_NEW_TOKENS,
        kb: str | None = None,
        localized_prompts: bool = True,
        constrained: bool = True,
    ) -> Judge:
        """A judge over the model ``model_ref`` names.

        Metrics that embed use the embedding model of the knowledge base ``kb`` (the run's),
        recorded when it was built, else the settings' embedding model.
        """
        from assistant.models.refs import parse_model_ref
        from assistant.service import get_backend

        backend = get_backend(model_ref, settings)
        # An endpoint serves requests in parallel. A local model on CPU gains nothing from
        # interleaving (and its backend is not thread-safe); a fake's script is consumed in
        # order. So only endpoints get more than one item in flight.
        remote = parse_model_ref(model_ref, settings).kind == "openai"
        try:
            identity, path, languages = judge_embedding_model(settings, kb)
        except ModelNotFoundError:
            # A judge with only LLM metrics never embeds: the bad setting is raised on first use.
            identity, path, languages = str(settings.embedding_model), None, None

        def load() -> Any:
            from assistant.knowledge.embeddings import load_sentence_model

            return load_sentence_model(path or judge_embedding_model(settings, kb)[1], settings.device)

        from assistant.knowledge.embeddings import QUERY, covers_cjk, model_prompts

        return cls(
            backend,
            embeddings,
            load_embeddings=load,
            max_new_tokens=max_new_tokens,
            concurrency=settings.max_concurrency if remote else 1,
            localized_prompts=localized_prompts,
            constrained=constrained,
            embedding_model=identity,
            english_only_embeddings=embeddings is None and not covers_cjk(languages),
            embedding_prefix=model_prompts(path).get(QUERY, "") if embeddings is None and path else "",
        )

    def cache_identity(self) -> str:
        """The judge as the judge cache knows it: everything that changes its verdicts (the
        model, the prompts, constrained decoding, the embedding model), so a changed judge
        judges again instead of reusing another judge's verdicts."""
        from evaluation.metrics.judge_prompts import PROMPTS_VERSION

        prompts = f"item-language/{PROMPTS_VERSION}" if self.localized_prompts else "ragas"
        replies = "json-constrained" if self.constrained else "free"
        embeddings = self.embedding_model or "given"
        return f"{self.model_id} prompts={prompts} replies={replies} embeddings={embeddings}"

    def __repr__(self) -> str:
        return f"Judge({self.model_id!r}, concurrency={self.concurrency})"

    @property
    def encoder(self) -> Any:
        """The embeddings model, loaded on first use."""
        if self._encoder is None:
            if self._load_embeddings is None:
                raise ConfigError(
                    f"the judge {self.model_id!r} has no embeddings model",
                    hint="answer_relevancy and answer_correctness compare embeddings: "
                    "build the judge with Judge.from_settings or pass embeddings=",
                )
            self._encoder = self._load_embeddings()
        return self._encoder

    def prepare_metric(self, ragas_metric: Any) -> Any:
        """``ragas_metric`` made ready for this judge: asked in each item's language (a
        ``LocalizedMetric``), with a warning on the Chinese items that an English-only
        embedding model scores."""
        from evaluation.metrics.judge_prompts import LocalizedMetric, chinese_copy

        chinese = chinese_copy(ragas_metric) if self.localized_prompts else ragas_metric
        return LocalizedMetric(
            ragas_metric,
            chinese,
            english_only_embedder=self.embedding_model if self.english_only_embeddings else None,
            on_english_only=self._warn_english_only,
        )

    def _warn_english_only(self) -> None:
        if not self._warned_english_only:
            self._warned_english_only = True
            log.warning(
                "judging Chinese items with the English-only embedding model %s: their answer_relevancy "
                "and answer_correctness carry a warning; use a multilingual embedding model",
                self.embedding_model,
            )

    def ragas_llm(self) -> Any:
        """This judge as a ragas ``InstructorBaseRagasLLM``."""
        if self._ragas_llm is None:
            self._ragas_llm = _llm_class()(self)
        return self._ragas_llm

    def ragas_embeddings(self) -> Any:
        """The embeddings model as a ragas ``BaseRagasEmbedding`` (loads it now)."""
        if self._ragas_embeddings is None:
            self._ragas_embeddings = _embeddings_class()(self.encoder, self.embedding_prefix)
        return self._ragas_embeddings


def judge_embedding_model(settings: Settings, kb: str | None = None) -> tuple[str, Path, list[str] | None]:
    """(identity, folder, model card languages) of the embedding model judged metrics use:
    the knowledge base's (as recorded when it was built) when ``kb`` names one, else the
    settings' model."""
    from assistant.knowledge.embeddings import embedding_model, model_languages

    if kb is None:
        identity, path = embedding_model(settings)
        return identity, path, model_languages(path)
    from assistant.knowledge.index import KnowledgeIndex, kb_folder
    from assistant.knowledge.kb import KnowledgeBaseNotFound

    meta_file = kb_folder(kb, settings) / "kb.json"
    if not meta_file.is_file():
        raise KnowledgeBaseNotFound(
            f"no knowledge base named {kb!r} in {settings.kb_dir}", hint=f"ladder kb create {kb}"
        )
    # Read from kb.json alone: the judge needs the model, not the Chroma collection.
    knowledge = KnowledgeIndex(kb, settings, json.loads(meta_file.read_text(encoding="utf-8")))
    path = knowledge.recorded_model_path()
    languages = knowledge.meta.get("embedding_languages", model_languages(path))
    return str(knowledge.meta["embedding_model"]), path, languages


def parse_reply(text: str, response_model: type[ModelT]) -> ModelT:
    """The first JSON value in ``text`` that validates as ``response_model``.

    Small models wrap JSON in code fences or chat around it, so we look for it. A bare
    list is accepted where the model has a single field (``{"statements": [...]}``
    written as ``[...]``). Anything else raises ``JudgeParseError`` with a short cause.
    """
    from pydantic import ValidationError

    fields = list(response_model.model_fields)
    candidates = _json_values(text)
    if not candidates:
        raise JudgeParseError(f"no JSON object in the reply: {_clip(text)!r}")
    first_error = ""
    for value in candidates:
        if isinstance(value, list) and len(fields) == 1:
            value = {fields[0]: value}
        try:
            return response_model.model_validate(value)
        except ValidationError as exc:
            if not first_error:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error["loc"]) or "reply"
                first_error = f"{where}: {error['msg']}"
    raise JudgeParseError(f"reply does not match {response_model.__name__} ({first_error})")


def _json_values(text: str) -> list[Any]:
    """JSON objects in ``text`` (outermost first), then arrays where there is no object."""
    decoder = json.JSONDecoder()
    found: dict[str, list[Any]] = {"{": [], "[": []}
    end, attempts = -1, 0
    for match in re.finditer(r"[{\[]", text):
        if match.start() < end:
            continue  # inside a value already decoded
        attempts += 1
        if attempts > _MAX_JSON_STARTS:
            break
        try:
            value, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        found[match.group()].append(value)
    return found["{"] + found["["]


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end from sync code, also when a loop is already running
    in this thread (a notebook, an async server): then it runs on a fresh loop in a
    worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ladder-judge") as pool:
        return pool.submit(asyncio.run, coroutine).result()


@cache
def _llm_class() -> type:
    """The ragas LLM adapter class, defined on first use so ragas loads lazily."""
    from langchain_core.messages import HumanMessage
    from ragas.llms.base import InstructorBaseRagasLLM

    class LadderJudgeLLM(InstructorBaseRagasLLM):
        """ragas' structured-output LLM over a Ladder backend's LangChain chat model."""

        def __init__(self, judge: Judge) -> None:
            self.judge = judge
            self.chat_model = judge.backend.chat_model()

        def generate(self, prompt: str, response_model: type[ModelT]) -> ModelT:
            return run_sync(self.agenerate(prompt, response_model))

        async def agenerate(self, prompt: str, response_model: type[ModelT]) -> ModelT:
            # Greedy: the same item must get the same verdict on every run. The reply model's
            # schema constrains the reply where the backend can (a grammar on the local model,
            # response_format on an endpoint); the reply is parsed and checked all the same.
            options: dict[str, Any] = {"temperature": 0.0, "max_tokens": self.judge.max_new_tokens}
            if self.judge.constrained:
                options["json_schema"] = response_model.model_json_schema()
            message = await self.chat_model.ainvoke([HumanMessage(prompt)], **options)
            self.judge.usage.add(message)
            content = message.content
            text = content if isinstance(content, str) else json.dumps(content)
            return parse_reply(text, response_model)

        def __repr__(self) -> str:
            return f"LadderJudgeLLM({self.judge.model_id!r})"

    return LadderJudgeLLM


@cache
def _embeddings_class() -> type:
    """The ragas embeddings adapter class, defined on first use."""
    from ragas.embeddings.base import BaseRagasEmbedding

    class LadderJudgeEmbeddings(BaseRagasEmbedding):
        """ragas' embeddings over a sentence-transformers-like ``encode``.

        Encoding runs inline: it is CPU-bound and short next to a judge call.
        """

        def __init__(self, encoder: Any, prefix: str = "") -> None:
            super().__init__()
            self.encoder = encoder
            self.prefix = prefix

        def embed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_texts([text])[0]

        async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
            return self.embed_text(text)

        def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            rows = self.encoder.encode([self.prefix + text for text in texts])
            return [[float(x) for x in row] for row in rows]

        async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
            return self.embed_texts(texts)

    return LadderJudgeEmbeddings
