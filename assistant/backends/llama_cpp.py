"""A GGUF file served in process by llama.cpp (``llama-cpp-python``): ``gguf:<file>`` references.

The engine is optional (``make engines``, or the ``deploy`` extra): this module imports
``llama_cpp`` only when a backend is built, and a missing engine is a one-line
``CapabilityError`` that says how to install it.

- **Prompts** go through the chat template stored in the GGUF (the one transformers uses, rendered
  with the same Jinja settings) and are tokenized here, without a BOS token and with special
  tokens parsed, exactly as ``hf_local`` tokenizes them, so both backends see the same ids.
- **Generation** is one conversation at a time (llama.cpp runs one sequence): greedy when the
  temperature is 0, otherwise temperature and top-p with the given seed; stop strings, tool calls
  (parsed from the text as ``hf_local`` does), a JSON schema as a llama.cpp grammar, and streaming
  to a sink (``assistant.backends.streaming``) for a single conversation.
- **score_choices** has ``hf_local``'s semantics: the sum of the log-probabilities of each
  choice's tokens after the prompt (rendered through the chat template or raw), from the logits.
  A prompt's tokens are evaluated once; a prompt that shares a prefix with the one before
  (k-shot exemplars) reuses that prefix from the KV cache; every choice continues the prompt's
  cache, so only its own tokens are evaluated.
- **Context**: the GGUF's trained length, capped at ``MAX_CONTEXT`` because llama.cpp allocates
  the whole KV cache up front (800 MB at 32k tokens for qwen2.5-0.5b).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.backends.base import LocalPrompts, template_messages, transcript, trim_at_stop
from assistant.backends.json_schema import current_schema
from assistant.backends.streaming import StopHoldback, current_sink
from assistant.backends.toolcalls import parse_tool_calls
from assistant.errors import CapabilityError, ModelNotFoundError
from assistant.models.refs import ModelRef, check_gguf_file
from assistant.settings import Settings, load_settings
from assistant.types import Completion, GenParams, Message, ToolCall, Usage

if TYPE_CHECKING:
    import numpy as np
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

# The engine release `make engines` builds, and the sdist the GGUF converter comes from.
LLAMA_CPP_VERSION = "0.3.36"
ENGINE_HINT = f"run `make engines` (builds llama-cpp-python=={LLAMA_CPP_VERSION} for this CPU)"
MAX_CONTEXT = 8192


def engine_missing() -> str | None:
    """None when the llama.cpp engine is importable, else a one-line install hint."""
    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama.cpp is not installed: {ENGINE_HINT}"
    return None


def engine_features() -> dict[str, bool]:
    """The CPU features the installed engine was compiled with (``AVX2``, ``AVX512``,
    ``AMX_INT8``...), from llama.cpp's system info; imports the engine."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    features: dict[str, bool] = {}
    for part in info.split("|"):  # "CPU : SSE3 = 1 | AVX2 = 1 | ... | REPACK = 1 |"
        name, equals, value = part.split(":")[-1].strip().partition(" = ")
        if equals:
            features[name.strip()] = value.strip() == "1"
    return features


def engine_line() -> tuple[str, str | None]:
    """``ladder doctor``'s line for the engine: (text, problem or None)."""
    hint = engine_missing()
    if hint is not None:
        return f"not installed (optional: GGUF formats and gguf: models); {ENGINE_HINT}", None
    import llama_cpp

    features = engine_features()
    built = " ".join(name for name, on in features.items() if on) or "no x86 extensions"
    line = f"llama-cpp-python {llama_cpp.__version__} ({built})"
    if any(on for name, on in features.items() if name.startswith("AMX")):
        return line, f"the llama.cpp engine was built with AMX, which crashes quantized models: {ENGINE_HINT}"
    return line, None


def _trained_context(path: Path) -> int:
    """The context length the GGUF's metadata gives (``<arch>.context_length``), else ``MAX_CONTEXT``."""
    from gguf import GGUFReader

    try:
        fields = GGUFReader(path).fields
        arch = bytes(fields["general.architecture"].parts[-1]).decode()
        field = fields.get(f"{arch}.context_length")
        return int(field.parts[-1][0]) if field is not None else MAX_CONTEXT
    except (KeyError, ValueError, IndexError, OSError):  # unreadable here: llama.cpp says why
        return MAX_CONTEXT


def _log_softmax(row: np.ndarray) -> np.ndarray:
    import numpy as np

    row = row.astype(np.float64)
    shifted = row - row.max()
    out: np.ndarray = shifted - np.log(np.exp(shifted).sum())
    return out


class LlamaCppBackend(LocalPrompts):
    # One sequence at a time, each answer timed on its own (``evaluation.runner``).
    batches_together = False

    def __init__(
        self, path: str | Path, settings: Settings | None = None, *, model_id: str | None = None
    ) -> None:
        hint = engine_missing()
        if hint is not None:
            raise CapabilityError(f"cannot serve {path}: the llama.cpp engine is not installed", hint=hint)
        import llama_cpp

        self.settings = settings or load_settings()
        self.path = check_gguf_file(Path(path))
        self.model_id = model_id or f"gguf:{self.path.name}"
        try:
            self.llm: Any = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=min(_trained_context(self.path), MAX_CONTEXT),
                n_threads=self.settings.threads,
                n_threads_batch=self.settings.threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotFoundError(
                f"llama.cpp could not load {self.path}: {exc}",
                hint="is it a whole GGUF of an architecture this llama.cpp knows? `ladder deploy` writes one",
            ) from None
        self.context_window = int(self.llm.n_ctx())
        self.n_vocab = int(self.llm.n_vocab())
        template = self.llm.metadata.get("tokenizer.chat_template")
        self._formatter: Any = None
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._formatter = Jinja2ChatFormatter(
                template, eos_token=self._token_text(self.llm.token_eos()),
                bos_token=self._token_text(self.llm.token_bos()), add_generation_prompt=True,
            )  # fmt: skip

    @classmethod
    def from_ref(cls, ref: ModelRef, settings: Settings) -> LlamaCppBackend:
        """``gguf:<file>`` (``assistant.backends.load``)."""
        return cls(ref.target, settings, model_id=ref.text or None)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return str(self.llm._model.token_get_text(token))

    # ---- prompts -------------------------------------------------------------------
    def render(self, conversation: Sequence[Message], tools: Sequence[dict[str, Any]] = ()) -> str:
        """The conversation as the model sees it, through the GGUF's chat template."""
        messages = template_messages(conversation)
        if self._formatter is not None:
            return str(self._formatter(messages=messages, tools=list(tools) or None).prompt)
        return transcript(messages)

    def tokenize(self, text: str) -> list[int]:
        """As ``hf_local`` does: no BOS, special tokens in the text parsed as such."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # ---- generation ------------------------------------------------------------------
    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        if not batch:
            return []
        budget = self._generation_budget(params)
        grammar = self._grammar()
        sink = current_sink() if len(batch) == 1 and not params.tools else None
        return [self._generate_one(c, params, budget, grammar, sink) for c in batch]

    def _grammar(self) -> Any:
        schema = current_schema()
        if schema is None:
            return None
        from llama_cpp import LlamaGrammar

        try:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except (ValueError, RuntimeError, TypeError) as exc:
            log.info("reply not constrained: %s", exc)
            return None

    def _generate_one(
        self, conversation: list[Message], params: GenParams, budget: int, grammar: Any, sink: Any
    ) -> Completion:
        ids, truncated = self._fit(self.tokenize(self.render(conversation, params.tools)), budget)
        sampling: dict[str, Any] = {"temperature": 0.0, "top_k": 1}
        if not params.greedy:
            sampling = {"temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
        start = time.perf_counter()
        pieces = self.llm.create_completion(
            ids,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            seed=params.seed,
            min_p=0.0,
            repeat_penalty=1.0,
            grammar=grammar,
            stream=True,
            **sampling,
        )
        holdback = StopHoldback(sink, params.stop, strip=True) if sink is not None else None
        raw, finish = "", "length"
        for piece in pieces:
            choice = piece["choices"][0]
            raw += choice["text"]
            if holdback is not None:
                holdback.feed(choice["text"])
            finish = choice.get("finish_reason") or finish
        if holdback is not None:
            holdback.flush()
        latency = time.perf_counter() - start
        produced = min(params.max_new_tokens, self._count_new_tokens(ids) + 1)
        text, stopped = trim_at_stop(raw, params.stop)
        finish = "stop" if stopped or finish == "stop" else "length"
        calls: list[ToolCall] = []
        if params.tools:
            known = {t.get("function", t).get("name") for t in params.tools}
            text, calls = parse_tool_calls(text, known)
            finish = "tool_calls" if calls else finish
        return Completion(
            text=text.strip(),
            usage=Usage(len(ids), produced, 1),
            latency_s=latency,
            model_id=self.model_id,
            finish_reason=finish,
            tool_calls=calls,
            prompt_truncated=truncated,
        )

    def _count_new_tokens(self, prompt: list[int]) -> int:
        """Tokens the last generation added after ``prompt`` (llama.cpp keeps them in its state)."""
        return max(0, int(self.llm.n_tokens) - len(prompt))

    # ---- exam scoring ----------------------------------------------------------------
    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]:
        """Sum of log-probabilities of each choice's tokens after each prompt (``hf_local``'s
        semantics: a choice is tokenized on its own and appended to the prompt's tokens)."""
        if not choices:
            raise ValueError("score_choices needs at least one choice")
        choice_ids = [self.tokenize(c) for c in choices]
        if any(not ids for ids in choice_ids):
            raise ValueError(f"a choice tokenizes to nothing: {choices!r}")
        budget = self.context_window - max(len(ids) for ids in choice_ids)
        templated = chat_template and self._formatter is not None
        rows = []
        for prompt in prompts:
            text = self.render([Message("user", prompt)]) if templated else prompt
            ids = self._fit(self.tokenize(text), budget)[0]
            if not ids:
                raise ValueError("score_choices needs a prompt of at least one token")
            rows.append(self._score_prompt(ids, choice_ids))
        return rows

    def _score_prompt(self, prompt: list[int], choice_ids: list[list[int]]) -> list[float]:
        last = _log_softmax(self._extend(prompt, keep_from=len(prompt) - 1)[-1])
        scores = []
        for choice in choice_ids:
            total = float(last[choice[0]])
            if len(choice) > 1:
                # Each of the choice's tokens after the first is predicted by the one before it.
                logits = self._extend(prompt + choice[:-1], keep_from=len(prompt))
                for row, token in zip(logits, choice[1:], strict=True):
                    total += float(_log_softmax(row)[token])
            scores.append(total)
        return scores

    def _extend(self, tokens: list[int], keep_from: int) -> np.ndarray:
        """Logits of ``tokens[keep_from:]``'s positions, evaluating only what the KV cache lacks.

        The cache holds ``llm.input_ids[:llm.n_tokens]``; the part of ``tokens`` it already
        holds is kept (at least the positions whose logits are wanted are evaluated again).
        """
        import numpy as np

        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens]
        common = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        start = min(common, keep_from)
        llm.n_tokens = start
        llm._ctx.kv_cache_seq_rm(-1, start, -1)
        out: list[np.ndarray] = []
        for chunk_start in range(start, len(tokens), llm.n_batch):
            chunk = tokens[chunk_start : chunk_start + llm.n_batch]
            wanted = [chunk_start + i >= keep_from for i in range(len(chunk))]
            self._decode(chunk, wanted)
            n_out = sum(wanted)
            if n_out:
                pointer = llm._ctx.get_logits()
                out.append(np.ctypeslib.as_array(pointer, shape=(n_out, self.n_vocab)).copy())
        return np.concatenate(out) if out else np.zeros((0, self.n_vocab), dtype=np.float32)

    def _decode(self, chunk: list[int], wanted: list[bool]) -> None:
        """One llama.cpp batch: ``chunk`` after the cached tokens, logits where ``wanted``."""
        llm = self.llm
        n_past = llm.n_tokens
        batch = llm._batch
        batch.set_batch(batch=chunk, n_past=n_past, logits_all=False)
        raw = batch.batch
        for i, flag in enumerate(wanted):
            raw.logits[i] = ctypes.c_int8(flag).value
        llm._ctx.decode(batch)
        llm.input_ids[n_past : n_past + len(chunk)] = chunk
        llm.n_tokens = n_past + len(chunk)

    def stream_tokens(self, text: str, max_new_tokens: int) -> Iterator[str]:
        """Raw greedy continuation of ``text``, a piece at a time (benchmarks)."""
        for piece in self.llm.create_completion(
            self.tokenize(text), max_tokens=max_new_tokens, temperature=0.0, top_k=1, stream=True
        ):
            yield piece["choices"][0]["text"]

    def chat_model(self) -> BaseChatModel:
        from assistant.backends.chat_model import LadderChatModel

        return LadderChatModel(backend=self)

    def close(self) -> None:
        self.llm.close()
