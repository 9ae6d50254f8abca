"""Greedy decoding under a JSON schema for the transformers backend.

``JsonLogitsProcessor`` is a transformers logits processor: at every step it keeps, for each
row, only the best-scored token whose text continues a reply that ``JsonGrammar`` accepts,
and whose reply can still be closed within the token budget left (``JsonGrammar.completion``
is the shortest closing text, at most one token per character). A whole reply allows only an
end-of-turn token. So even a random model ends with JSON that parses.

It looks at the ``top_k`` best tokens first: a model that follows the prompt's examples
usually wants a valid token, so a step costs a handful of string checks. When none of those
fit, the single-character tokens are tried (every structural JSON character is one), and as
a last resort the first character of the shortest completion is forced. The constraint picks
one token per step, so constrained decoding is greedy whatever the temperature: the judge,
its only user, decodes greedily anyway.

Token texts are the tokenizer's decoding of each id alone; a byte-level token that holds
part of a multi-byte character decodes to U+FFFD, which the grammar accepts only inside a
string, where the whole character belongs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

from assistant.backends.json_schema import JsonGrammar, State

TOP_K = 48
_SPIECE_UNDERLINE = "\u2581"


class TokenTable:
    """Every token id's text, and the ids of single-character tokens, for one tokenizer."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        ids = list(range(len(tokenizer)))
        texts: list[str | None] = list(tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False))
        pieces = tokenizer.convert_ids_to_tokens(ids)
        special = set(tokenizer.all_special_ids) | {
            i for i, token in tokenizer.added_tokens_decoder.items() if token.special
        }
        for i, piece in enumerate(pieces):
            if i in special:
                texts[i] = None
            elif isinstance(piece, str) and (piece.startswith(_SPIECE_UNDERLINE) or piece == "<0x20>"):
                # SentencePiece drops the word-start space when a token is decoded alone.
                text = texts[i] or ""
                texts[i] = text if text.startswith(" ") else " " + text
        texts += [None] * max(0, vocab_size - len(texts))
        self.texts = texts
        self.single_chars = [i for i, text in enumerate(texts) if text is not None and len(text) == 1]
        self.by_char: dict[str, int] = {}
        for i in self.single_chars:
            self.by_char.setdefault(str(texts[i]), i)


class JsonLogitsProcessor(LogitsProcessor):
    """Masks every token but one that keeps each row's reply valid JSON of one schema."""

    def __init__(
        self,
        grammar: JsonGrammar,
        table: TokenTable,
        eos_ids: Sequence[int],
        prompt_width: int,
        max_new_tokens: int,
        top_k: int = TOP_K,
    ) -> None:
        self.grammar = grammar
        self.table = table
        self.eos_ids = list(eos_ids)
        self.prompt_width = prompt_width
        self.max_new_tokens = max_new_tokens
        self.top_k = top_k
        self.states: list[State | None] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_width
        if step == 0 or not self.states:
            self.states = [self.grammar.start() for _ in range(input_ids.shape[0])]
        else:
            self._advance([int(token) for token in input_ids[:, -1].tolist()])
        remaining = self.max_new_tokens - step
        masked = torch.full_like(scores, float("-inf"))
        for row, state in enumerate(self.states):
            if state is None:  # this row has ended; generate pads it
                masked[row] = scores[row]
                continue
            for token in self._allowed(state, scores[row], remaining):
                masked[row, token] = scores[row, token]
        return masked  # type: ignore[return-value]

    def _advance(self, tokens: list[int]) -> None:
        for row, token in enumerate(tokens):
            state = self.states[row]
            if state is None:
                continue
            text = self.table.texts[token] if token < len(self.table.texts) else None
            self.states[row] = (
                None if token in self.eos_ids or text is None else self.grammar.advance(state, text)
            )

    def _allowed(self, state: State, scores: torch.Tensor, remaining: int) -> list[int]:
        if self.grammar.complete(state):
            return self.eos_ids
        # After this token, remaining - 1 tokens must still be able to close the reply.
        budget = remaining - 1
        k = min(self.top_k, scores.shape[0])
        candidates = torch.topk(scores, k).indices.tolist()
        token = self._first_fit(state, candidates, budget)
        if token is None:
            singles = self.table.single_chars
            order = torch.argsort(scores[singles], descending=True).tolist()
            token = self._first_fit(state, [singles[i] for i in order], budget)
        if token is None:
            closing = self.grammar.completion(state)
            token = self.table.by_char.get(closing[0], self.eos_ids[0]) if closing else self.eos_ids[0]
        return [token]

    def _first_fit(self, state: State, candidates: list[int], budget: int) -> int | None:
        texts = self.table.texts
        for token in candidates:
            text = texts[token] if token < len(texts) else None
            if not text:
                continue
            after = self.grammar.advance(state, text)
            if after is not None and len(self.grammar.completion(after)) <= budget:
                return token
        return None
