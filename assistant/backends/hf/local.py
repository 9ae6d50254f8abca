"""A transformers model from a local folder (a converted pack or any HF folder).

Batched generation with left padding and the model's chat template, stop sequences,
greedy by default, usage and latency per answer, batched ``score_choices`` for exams
(last-position logits only, and a token prefix that prompts share, such as k-shot exemplars,
run once and reused from the KV cache), an optional PEFT adapter, and a thread count and
dtype from the settings. A single conversation generated under a stream sink
(``assistant.backends.streaming``) also sends its text to the sink as tokens arrive. Under a
JSON schema (``assistant.backends.json_schema.respond_with_schema``) replies are decoded
greedily under that schema (``hf/constrained.py``), so they parse.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from assistant.backends.adapter_rows import current_adapter_rows
from assistant.backends.base import LocalPrompts, template_messages, transcript, trim_at_stop
from assistant.backends.hf.device import pick_device, pick_dtype
from assistant.backends.hf.scoring import PrefixScoring
from assistant.backends.json_schema import UnsupportedSchema, current_schema
from assistant.backends.streaming import current_sink
from assistant.backends.toolcalls import parse_tool_calls
from assistant.errors import ModelNotFoundError
from assistant.models.refs import ModelRef, check_model_folder
from assistant.settings import Settings, load_settings
from assistant.types import Completion, GenParams, Message, ToolCall, Usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

# Tokens kept from the start of an over-long prompt (system prompt, instructions) when
# it is truncated; the rest is kept from the end, where the question usually is.
_FALLBACK_CONTEXT = 2048


def _top_two_gap(row: list[float]) -> float:
    top = sorted(row, reverse=True)
    return top[0] - top[1]


def adapter_kind(adapter: Path | None) -> str | None:
    """What ``+<adapter>`` holds: ``lora`` (or another weight-adding PEFT method),
    ``prompt-tuning``, or ``full`` (a whole fine-tuned model); None without an adapter."""
    if adapter is None:
        return None
    config = adapter / "adapter_config.json"
    if not config.is_file():
        return "full"
    peft_type = str(json.loads(config.read_text(encoding="utf-8")).get("peft_type", "LORA"))
    return "prompt-tuning" if peft_type == "PROMPT_TUNING" else "lora"


class HFLocalBackend(PrefixScoring, LocalPrompts):
    def __init__(
        self,
        path: str | Path,
        settings: Settings | None = None,
        *,
        adapter: str | Path | None = None,
        model_id: str | None = None,
    ) -> None:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.settings = settings or load_settings()
        self.path = check_model_folder(Path(path))
        torch.set_num_threads(self.settings.threads)
        self.device = pick_device(self.settings.device)
        self.dtype = pick_dtype(self.settings.dtype, self.device, self.settings.home)
        self.adapter = Path(adapter) if adapter else None
        self.adapter_kind = adapter_kind(self.adapter)
        # With a LoRA adapter, each row of a batch may use it or not (``backends.adapter_rows``);
        # peft mixes rows for LoRA only, and a full fine-tune has no base beside it.
        self.mixes_adapters = self.adapter_kind == "lora"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"could not load a causal LM from {self.path}: {exc}") from None
        self.model: Any = self._load_model(self.dtype)
        self._float32_twin: Any = None
        self._token_table: Any = None  # token texts for constrained (JSON) replies, built on first use
        self.model_id = model_id or self.path.name + (f"+{self.adapter.name}" if self.adapter else "")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        window = getattr(self.model.config, "max_position_embeddings", 0)
        self.context_window = int(window or _FALLBACK_CONTEXT)
        self._eos_ids = self._collect_eos_ids()

    @classmethod
    def from_ref(cls, ref: ModelRef, settings: Settings) -> HFLocalBackend:
        """A pack (installed) or a folder, with the reference's adapter (``assistant.backends.load``)."""
        return cls(ref.local_folder(settings), settings, adapter=ref.adapter, model_id=ref.text)

    def _load_model(self, dtype: torch.dtype) -> Any:
        """The model (with the adapter, if any) in ``dtype`` on the device, in eval mode.

        A full fine-tune's folder is the whole model and loads in place of the base. A
        prompt-tuning adapter loads through ``PeftModel``, whose virtual tokens then become a
        KV-cache prefix of the base model (``virtual_prefix``: the prefix cache, position ids and
        4D masks of scoring keep working). LoRA stays a ``PeftModel`` (rows may mix adapters)."""
        from transformers import AutoModelForCausalLM

        source = self.adapter if self.adapter_kind == "full" and self.adapter else self.path
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"could not load a causal LM from {source}: {exc}") from None
        if self.adapter is not None and self.adapter_kind != "full":
            from peft import PeftModel

            from assistant.backends.hf.warnings import renamed_property_warnings_off

            with renamed_property_warnings_off():
                model = PeftModel.from_pretrained(model, str(self.adapter))
            if self.adapter_kind == "prompt-tuning":
                from assistant.backends.hf.virtual_prefix import attach_virtual_prefix

                embeddings = model.get_prompt(batch_size=1)[0].detach()
                model = attach_virtual_prefix(model.get_base_model().to(self.device).eval(), embeddings)
        return model.to(self.device).eval()

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
        messages = template_messages(conversation)
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(
                messages, tools=list(tools) or None, add_generation_prompt=True, tokenize=False
            )
            return str(text)
        return transcript(messages)

    # ---- generation ------------------------------------------------------------------
    def generate(self, batch: Sequence[list[Message]], params: GenParams) -> list[Completion]:
        if not batch:
            return []
        budget = self._generation_budget(params)
        prompts: list[tuple[list[int], bool]] = []
        for conversation in batch:
            text = self.render(conversation, params.tools)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            prompts.append(self._fit(ids, budget))
        rows = current_adapter_rows(len(batch))
        if rows is not None and any(rows) and self.adapter is None:
            raise ValueError(f"{self.model_id} has no adapter, so no row can use one")
        # Sort by length so each micro-batch wastes little padding; restore order after.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i][0]))
        sink = current_sink()
        if sink is not None and len(batch) == 1 and not params.tools:
            # Tool calls are parsed out of the whole text afterwards, so only plain answers stream.
            from assistant.backends.hf.streamer import SinkStreamer

            streamer = SinkStreamer(self.tokenizer, sink, params.stop)
            return self._generate_chunk(prompts, params, streamer, rows)
        results: dict[int, Completion] = {}
        size = self.settings.batch_size
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            chunk_rows = None if rows is None else tuple(rows[i] for i in chunk)
            completions = self._generate_chunk([prompts[i] for i in chunk], params, None, chunk_rows)
            for index, completion in zip(chunk, completions, strict=True):
                results[index] = completion
        return [results[i] for i in range(len(batch))]

    def _adapter_names(self, rows: Sequence[bool] | None) -> list[str] | None:
        """peft's per-row adapter names for a mixed batch; None when every row uses the adapter
        (the plain forward) or there is no adapter."""
        if rows is None or self.adapter is None or all(rows):
            return None
        if not self.mixes_adapters:
            raise ValueError(f"{self.model_id} cannot answer some rows without its adapter")
        name = self.model.active_adapter
        return [name if use else "__base__" for use in rows]

    def _generate_chunk(
        self,
        prompts: list[tuple[list[int], bool]],
        params: GenParams,
        streamer: Any = None,
        rows: Sequence[bool] | None = None,
    ) -> list[Completion]:
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
        if streamer is not None:
            kwargs["streamer"] = streamer
        adapter_names = self._adapter_names(rows)
        if adapter_names is not None:
            kwargs["adapter_names"] = adapter_names
        constraint = self._json_constraint(width, params.max_new_tokens)
        if constraint is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([constraint])
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

    def _json_constraint(self, prompt_width: int, max_new_tokens: int) -> Any:
        """A logits processor for the schema set by ``respond_with_schema``, if any.

        A schema outside what ``JsonGrammar`` decodes leaves the reply unconstrained (the
        caller parses and counts failures as it would without a schema).
        """
        schema = current_schema()
        if schema is None:
            return None
        from assistant.backends.hf.constrained import JsonLogitsProcessor, TokenTable
        from assistant.backends.json_schema import JsonGrammar

        try:
            grammar = JsonGrammar(schema)
        except UnsupportedSchema as exc:
            log.info("reply not constrained: %s", exc)
            return None
        if self._token_table is None:
            vocab = int(self.model.config.vocab_size)
            self._token_table = TokenTable(self.tokenizer, vocab)
        return JsonLogitsProcessor(grammar, self._token_table, self._eos_ids, prompt_width, max_new_tokens)

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
        scores = self._choice_scores(prompt_ids, choice_ids)
        return self._recheck_close_calls(scores, prompt_ids, choice_ids)

    def _recheck_close_calls(
        self, scores: list[list[float]], prompt_ids: list[list[int]], choice_ids: list[list[int]]
    ) -> list[list[float]]:
        """Scores again, with a float32 copy of the model, the prompts whose two best options
        a bf16 model put closer than ``score_recheck_margin`` (per choice token).

        bf16 rounds every layer's output; on C-Eval it moved the gap between the two best
        options by up to 0.07 (qwen2.5-coder-0.5b) and 0.15 (smollm2-135m), enough to flip a
        close call (benchmarks/scoring_dtype.py). A call decided by more than that is the
        same in float32, so only the close ones pay for float32. The copy loads on first use.
        """
        margin = self.settings.score_recheck_margin * max(len(ids) for ids in choice_ids)
        if self.dtype == torch.float32 or margin <= 0 or len(choice_ids) < 2:
            return scores
        close = [i for i, row in enumerate(scores) if _top_two_gap(row) < margin]
        if not close:
            return scores
        if self._float32_twin is None:
            log.info("loading a float32 copy of %s to re-check close exam calls", self.model_id)
            self._float32_twin = self._load_model(torch.float32)
        fast, self.model = self.model, self._float32_twin
        try:
            exact = self._choice_scores([prompt_ids[i] for i in close], choice_ids)
        finally:
            self.model = fast
        log.info("re-scored %d of %d close calls in float32", len(close), len(scores))
        rechecked = list(scores)
        for index, row in zip(close, exact, strict=True):
            rechecked[index] = row
        return rechecked

    def _choice_scores(self, prompt_ids: list[list[int]], choice_ids: list[list[int]]) -> list[list[float]]:
        """Log-probability sums of every choice after every (tokenized) prompt."""
        longest = max(len(ids) for ids in choice_ids)
        if longest == 1:
            letters = torch.tensor([ids[0] for ids in choice_ids])

            def letter_scores(logits: torch.Tensor, _rows: list[int]) -> list[list[float]]:
                scores: list[list[float]] = torch.log_softmax(logits[:, -1, :], dim=-1)[:, letters].tolist()
                return scores

            return self._score_rows(prompt_ids, 1, letter_scores)
        n = len(choice_ids)

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

    def chat_model(self) -> BaseChatModel:
        from assistant.backends.chat_model import LadderChatModel

        return LadderChatModel(backend=self)
