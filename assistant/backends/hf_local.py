"""A transformers model from a local folder (a converted pack or any HF folder).

Batched generation with left padding and the model's chat template, stop sequences,
greedy by default, usage and latency per answer, batched ``score_choices`` for exams
(last-position logits only, and a token prefix that prompts share, such as k-shot exemplars,
run once and reused from the KV cache), an optional PEFT adapter, and a thread count and
dtype from the settings.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from assistant.backends.base import trim_at_stop
from assistant.backends.toolcalls import parse_tool_calls
from assistant.errors import ContextOverflowError, ModelNotFoundError
from assistant.models.refs import check_model_folder
from assistant.settings import Settings, load_settings
from assistant.types import Completion, GenParams, Message, ToolCall, Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Tokens kept from the start of an over-long prompt (system prompt, instructions) when
# it is truncated; the rest is kept from the end, where the question usually is.
_KEEP_HEAD_TOKENS = 64
_FALLBACK_CONTEXT = 2048
# What one more forward pass costs, in tokens of compute: small batches of similar length
# beat one batch padded to its longest row only when they save more padding than this.
_PASS_COST_TOKENS = 32


def pick_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        from assistant.errors import ConfigError

        raise ConfigError("device=cuda but no CUDA device is available", hint="use device=auto or cpu")
    return setting


def _measure_matmul(dtype: torch.dtype, repeats: int = 12) -> float:
    """Seconds for a decoder-sized matmul in ``dtype`` (the hot loop of generation)."""
    x = torch.randn(16, 896, dtype=dtype)
    w = torch.randn(896, 4864, dtype=dtype)
    torch.matmul(x, w)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(x, w)
    return time.perf_counter() - start


def pick_dtype(setting: str, device: str, home: Path) -> torch.dtype:
    """fp32 or bf16 as configured; ``auto`` picks whichever this machine runs faster.

    On CUDA bf16 wins whenever it is supported. On CPU it depends on the instruction set
    (AVX-512 BF16 / AMX make bf16 fast; plain AVX2 emulates it and is slower), so we
    measure once and remember the answer in ``LADDER_HOME/cpu_profile.json``.
    """
    if setting == "float32":
        return torch.float32
    if setting == "bfloat16":
        return torch.bfloat16
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    import platform

    profile_path = home / "cpu_profile.json"
    key = f"{platform.processor() or platform.machine()}|torch {torch.__version__}|{torch.get_num_threads()}t"
    try:
        profile = json.loads(profile_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        profile = {}
    if profile.get("key") != key:
        fp32 = _measure_matmul(torch.float32)
        bf16 = _measure_matmul(torch.bfloat16)
        profile = {"key": key, "float32_s": fp32, "bfloat16_s": bf16,
                   "faster": "bfloat16" if bf16 < fp32 * 0.9 else "float32"}  # fmt: skip
        home.mkdir(parents=True, exist_ok=True)
        profile_path.write_text(json.dumps(profile, indent=2), encoding="utf-8")
    return torch.bfloat16 if profile["faster"] == "bfloat16" else torch.float32


def _common_prefix_len(a: list[int], b: list[int]) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


class HFLocalBackend:
    def __init__(
        self,
        path: str | Path,
        settings: Settings | None = None,
        *,
        adapter: str | Path | None = None,
        model_id: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.settings = settings or load_settings()
        self.path = check_model_folder(Path(path))
        torch.set_num_threads(self.settings.threads)
        self.device = pick_device(self.settings.device)
        self.dtype = pick_dtype(self.settings.dtype, self.device, self.settings.home)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            model: Any = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"could not load a causal LM from {self.path}: {exc}") from None
        self.adapter = Path(adapter) if adapter else None
        if self.adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(self.adapter))
        self.model: Any = model.to(self.device).eval()
        self.model_id = model_id or self.path.name + (f"+{self.adapter.name}" if self.adapter else "")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.context_window = int(getattr(model.config, "max_position_embeddings", 0) or _FALLBACK_CONTEXT)
        self._eos_ids = self._collect_eos_ids()
        # score_choices runs a prefix that prompts share once when it is this long (the
        # chat header and k-shot exemplars of an exam subject); shorter ones do not pay
        # for the cache copies. ``reuse_prefix = False`` scores every prompt whole.
        self.reuse_prefix = True
        self.min_shared_prefix = 32

    def _collect_eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        eos = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos.add(self.tokenizer.eos_token_id)
        # Chat models end a turn with their own marker; stop there too.
        for marker in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<end_of_turn>"):
            token_id = self.tokenizer.convert_tokens_to_ids(marker)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id and token_id >= 0:
                eos.add(token_id)
        return sorted(eos)

    # ---- prompts -------------------------------------------------------------------
    def render(self, conversation: Sequence[Message], tools: Sequence[dict[str, Any]] = ()) -> str:
        """The conversation as the model sees it, through its chat template."""
        messages = [m.to_dict() for m in conversation]
        for message in messages:  # templates expect arguments as a mapping, not a list
            for call in message.get("tool_calls", []):
                call["type"] = "function"
                call["function"] = {"name": call["name"], "arguments": call["args"]}
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(
                messages, tools=list(tools) or None, add_generation_prompt=True, tokenize=False
            )
            return str(text)
        # A base model without a template: a plain transcript.
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n".join([*lines, "Assistant:"])

    def _fit(self, ids: list[int], budget: int) -> tuple[list[int], bool]:
        """Make a prompt fit ``budget`` tokens by the overflow policy."""
        if len(ids) <= budget:
            return ids, False
        if self.settings.context_overflow == "error":
            raise ContextOverflowError(
                f"prompt has {len(ids)} tokens; {self.model_id} allows {budget} "
                f"(context {self.context_window} minus the generation budget)",
                hint="shorten the prompt, lower max_new_tokens, or set context_overflow=truncate",
            )
        head = min(_KEEP_HEAD_TOKENS, budget // 4)
        log.warning("prompt of %d tokens truncated to %d to fit %s", len(ids), budget, self.model_id)
        return ids[:head] + ids[len(ids) - (budget - head) :], True

    # ---- generation ------------------------------------------------------------------
    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        if not batch:
            return []
        budget = self.context_window - params.max_new_tokens
        if budget <= 0:
            raise ContextOverflowError(
                f"max_new_tokens={params.max_new_tokens} leaves no room "
                f"in a {self.context_window}-token context"
            )
        prompts: list[tuple[list[int], bool]] = []
        for conversation in batch:
            text = self.render(conversation, params.tools)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            prompts.append(self._fit(ids, budget))
        # Sort by length so each micro-batch wastes little padding; restore order after.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i][0]))
        results: dict[int, Completion] = {}
        size = self.settings.batch_size
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            for index, completion in zip(chunk, self._generate_chunk([prompts[i] for i in chunk], params),
                                         strict=True):  # fmt: skip
                results[index] = completion
        return [results[i] for i in range(len(batch))]

    def _generate_chunk(self, prompts: list[tuple[list[int], bool]], params: GenParams) -> list[Completion]:
        pad_id = int(self.tokenizer.pad_token_id)
        width = max(len(ids) for ids, _ in prompts)
        input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, (ids, _) in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": pad_id,
            "eos_token_id": self._eos_ids,
            "do_sample": not params.greedy,
        }
        if params.greedy:
            # Unset the model's default sampling knobs so greedy stays greedy and quiet.
            kwargs.update(temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        start = time.perf_counter()
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), **kwargs
            )
        latency = time.perf_counter() - start
        new_tokens = output[:, width:].tolist()
        known_tools = {t.get("function", t).get("name") for t in params.tools}
        completions = []
        for row, (ids, truncated) in enumerate(prompts):
            tokens = new_tokens[row]
            ended = next((i for i, tok in enumerate(tokens) if tok in self._eos_ids), None)
            produced = tokens[: ended + 1] if ended is not None else tokens
            text = str(self.tokenizer.decode(produced, skip_special_tokens=True))
            text, stopped = trim_at_stop(text, params.stop)
            finish = "stop" if ended is not None or stopped else "length"
            calls: list[ToolCall] = []
            if params.tools:
                text, calls = parse_tool_calls(text, known_tools)
                finish = "tool_calls" if calls else finish
            completions.append(
                Completion(
                    text=text.strip(),
                    usage=Usage(len(ids), len(produced), 1),
                    latency_s=latency,
                    model_id=self.model_id,
                    finish_reason=finish,
                    tool_calls=calls,
                    prompt_truncated=truncated,
                )
            )
        return completions

    # ---- exam scoring ----------------------------------------------------------------
    def score_choices(
        self, prompts: Sequence[str], choices: Sequence[str], chat_template: bool = True
    ) -> list[list[float]]:
        """Sum of log-probabilities of each choice's tokens after each prompt.

        With ``chat_template`` (the default) a prompt is the user's message and a choice the
        start of the assistant's reply, seen through the model's chat template (as the
        openai_compat backend does); without it, or for a model with no template, the prompt
        is raw text the choice continues. Which is better depends on the prompt: on the
        generation benchmark's English MCQs qwen2.5-coder-0.5b picked "B" for everything on
        raw prompts and the right letter through its template, while on C-Eval's
        completion-style 5-shot prompts the template made it pick "A" for everything and raw
        scoring got 11 of 24 demo-exam items right. Exam suites therefore score raw prompts
        by default (the suite key ``chat_template``), as lm-evaluation-harness does.

        When every choice is one token (option letters), one forward pass over the prompts
        scores all choices at once, and only the last position's logits are computed.
        Otherwise every (prompt, choice) pair is one row, and only the last few positions'
        logits are computed. Rows are scored in length-sorted micro-batches, left-padded so
        the choice tokens line up at the end. Prompts that share a long token prefix (the
        chat header and the k-shot exemplars of an exam subject) run that prefix once and
        only their own suffixes after it (see ``_score_rows``).
        """
        if not choices:
            raise ValueError("score_choices needs at least one choice")
        choice_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        if any(not ids for ids in choice_ids):
            raise ValueError(f"a choice tokenizes to nothing: {choices!r}")
        longest = max(len(ids) for ids in choice_ids)
        budget = self.context_window - longest
        templated = chat_template and self.tokenizer.chat_template
        texts = [self.render([Message("user", p)]) if templated else p for p in prompts]
        prompt_ids = [self._fit(self.tokenizer(t, add_special_tokens=False)["input_ids"], budget)[0]
                      for t in texts]  # fmt: skip
        if longest == 1:
            letters = torch.tensor([ids[0] for ids in choice_ids])

            def letter_scores(logits: torch.Tensor, _rows: list[int]) -> list[list[float]]:
                scores: list[list[float]] = torch.log_softmax(logits[:, -1, :], dim=-1)[:, letters].tolist()
                return scores

            return self._score_rows(prompt_ids, 1, letter_scores)
        n = len(choices)

        def choice_sums(logits: torch.Tensor, rows: list[int]) -> list[float]:
            sums = []
            for row, index in enumerate(rows):
                choice = choice_ids[index % n]
                # logits at position t predict token t+1: the choice's k tokens are
                # predicted by the k positions just before the end.
                logprobs = torch.log_softmax(logits[row, -len(choice) - 1 : -1, :], dim=-1)
                sums.append(float(logprobs[torch.arange(len(choice)), torch.tensor(choice)].sum()))
            return sums

        pairs = [p + c for p in prompt_ids for c in choice_ids]
        flat = self._score_rows(pairs, longest + 1, choice_sums)
        return [flat[i * n : (i + 1) * n] for i in range(len(prompt_ids))]

    def _score_rows(
        self, rows: list[list[int]], keep: int, reduce: Callable[[torch.Tensor, list[int]], list[_T]]
    ) -> list[_T]:
        """``reduce(logits of the last keep positions, row indices)`` over micro-batches of ``rows``.

        Rows are grouped by shared token prefix; a group whose prefix pays for itself runs
        it once and its suffixes against a copy of that prefix's KV cache, the rest run
        whole. Either way micro-batches hold rows of similar length, so padding is small,
        and the results come back in the order of ``rows``.
        """
        results: dict[int, _T] = {}
        whole: list[int] = []
        for prefix_len, members in self._prefix_groups(rows, keep):
            if prefix_len == 0:
                whole.extend(members)
                continue
            prefix = rows[members[0]][:prefix_len]
            cache = self._prefix_cache(prefix)
            if cache is None:  # a cache layout we do not expand (sliding window, ...)
                whole.extend(members)
                continue
            for chunk in self._micro_batches(members, [len(r) - prefix_len for r in rows]):
                suffixes = [rows[i][prefix_len:] for i in chunk]
                logits = self._last_logits(suffixes, keep, prefix=(prefix_len, cache))
                results.update(zip(chunk, reduce(logits, chunk), strict=True))
        for chunk in self._micro_batches(whole, [len(r) for r in rows]):
            logits = self._last_logits([rows[i] for i in chunk], keep)
            results.update(zip(chunk, reduce(logits, chunk), strict=True))
        return [results[i] for i in range(len(rows))]

    def _prefix_groups(self, rows: list[list[int]], keep: int) -> list[tuple[int, list[int]]]:
        """Rows grouped by shared token prefix: ``(prefix length, row indices)``; 0 = no reuse.

        Sorting the rows lexicographically puts rows with a common prefix next to each
        other; a run of neighbours becomes a group while adding a row does not shrink the
        tokens the group saves, ``(size - 1) * prefix``. Each row keeps at least ``keep``
        tokens of its own, so the positions whose logits are read are computed in the
        suffix pass.
        """
        if not self.reuse_prefix or len(rows) < 2:
            return [(0, list(range(len(rows))))]
        order = sorted(range(len(rows)), key=rows.__getitem__)
        groups: list[tuple[int, list[int]]] = []
        members, shared = [order[0]], len(rows[order[0]]) - keep
        for index in order[1:]:
            previous = rows[members[-1]]
            common = _common_prefix_len(previous, rows[index])
            narrowed = min(shared, common, len(rows[index]) - keep)
            saved_now = (len(members) - 1) * shared
            if narrowed >= self.min_shared_prefix and len(members) * narrowed >= saved_now:
                members.append(index)
                shared = narrowed
            else:
                groups.append((shared if len(members) > 1 else 0, members))
                members, shared = [index], len(rows[index]) - keep
        groups.append((shared if len(members) > 1 else 0, members))
        return groups

    def _prefix_cache(self, prefix: list[int]) -> Any | None:
        """The KV cache of ``prefix`` (batch of one), or None if its layers are not plain."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        with torch.inference_mode():
            output = self.model(
                input_ids=torch.tensor([prefix], device=self.device), use_cache=True, logits_to_keep=1
            )
        cache = output.past_key_values
        plain = isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)
        return cache if plain else None

    def _micro_batches(self, indices: list[int], lengths: list[int]) -> list[list[int]]:
        """``indices`` in order of length, cut into batches of at most ``batch_size`` rows.

        The cut points minimise padded tokens plus ``_PASS_COST_TOKENS`` per forward pass
        (exactly, by dynamic programming over the sorted lengths): padding is compute thrown
        away, and each extra pass has a fixed cost of its own (weights streamed from memory,
        thread start-up), so a few tokens of padding are cheaper than one more pass.
        """
        order = sorted(indices, key=lengths.__getitem__)
        size = self.settings.batch_size
        # best[j]: cost of the first j rows; cut[j]: where the last batch of those starts.
        best, cut = [0] + [0] * len(order), [0] * (len(order) + 1)
        for end in range(1, len(order) + 1):
            width = lengths[order[end - 1]]
            best[end], cut[end] = min(
                (best[start] + (end - start) * width + _PASS_COST_TOKENS, start)
                for start in range(max(0, end - size), end)
            )
        batches: list[list[int]] = []
        end = len(order)
        while end > 0:
            batches.insert(0, order[cut[end] : end])
            end = cut[end]
        return batches

    def _last_logits(
        self, rows: list[list[int]], keep: int, prefix: tuple[int, Any] | None = None
    ) -> torch.Tensor:
        """Logits (float32, CPU) of the last ``keep`` positions of left-padded rows.

        With ``prefix=(length, cache)`` the rows are suffixes of that cached prefix: the
        cache is copied to the batch, the mask covers prefix + padded suffix (padding in
        the middle is masked like any padding), and positions continue from the prefix.
        """
        from transformers import DynamicCache

        width = max(len(r) for r in rows)
        pad_id = int(self.tokenizer.pad_token_id)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, width - len(r) :] = torch.tensor(r)
            attention[i, width - len(r) :] = 1
        # Left padding shifts positions; give each row positions that start at 0.
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        extra: dict[str, Any] = {}
        if prefix is not None:
            prefix_len, cache = prefix
            positions = positions + prefix_len
            attention = torch.cat([torch.ones((len(rows), prefix_len), dtype=torch.long), attention], dim=1)
            # A fresh cache per batch: the forward pass appends the suffix to it.
            batch = len(rows)
            copies = [(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1))
                      for layer in cache.layers]  # fmt: skip
            extra["past_key_values"] = DynamicCache(ddp_cache_data=copies)
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                position_ids=positions.to(self.device),
                logits_to_keep=keep,
                use_cache=prefix is not None,
                **extra,
            ).logits
        return logits.float().cpu()

    def chat_model(self) -> BaseChatModel:
        from assistant.backends.chat_model import LadderChatModel

        return LadderChatModel(backend=self)
