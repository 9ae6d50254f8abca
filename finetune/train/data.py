"""What the trainer reads: the prepared data folder (or one JSONL file), checked line by line.

A data folder is what ``ladder finetune prepare`` writes: ``train.jsonl``, optionally
``val.jsonl`` (early stopping and the val-loss curve), ``test.jsonl`` (left for evaluation),
``manifest.json`` (with the ``data_hash``) and ``report.json``. One record per line, either
chat (``{"messages": [{"role": ..., "content": ...}, ...]}``, for ``sft``) or raw text
(``{"text": ...}``, for ``cpt``). Every problem is reported as ``file:line`` before any
model is loaded, so a bad file costs nothing; the lines are read by ``assistant.records_io``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.records_io import iter_jsonl
from finetune.data.errors import TrainDataError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Record:
    """One training example as read: chat ``messages`` or raw ``text``, and where it came from."""

    where: str  # file:line
    messages: tuple[dict[str, str], ...] = ()
    text: str = ""

    @property
    def kind(self) -> str:
        return "chat" if self.messages else "text"


@dataclass
class DataSource:
    path: Path
    train_file: Path
    val_file: Path | None
    data_hash: str
    manifest: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    train: list[Record] = field(default_factory=list)
    val: list[Record] = field(default_factory=list)


def _message(value: Any, path: Path, line: int, index: int) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TrainDataError(f"messages[{index}] is not an object", file=path, line=line)
    role, content = value.get("role"), value.get("content")
    if role not in ROLES:
        raise TrainDataError(
            f"messages[{index}] has role {role!r}", hint=f"roles are {', '.join(ROLES)}", file=path, line=line
        )
    if not isinstance(content, str):
        raise TrainDataError(f"messages[{index}] has no text content", file=path, line=line)
    return {"role": str(role), "content": content}


def parse_record(data: dict[str, Any], path: Path, line: int) -> Record:
    """One record of a JSONL file: chat ``messages`` or raw ``text``."""
    if "messages" in data:
        raw = data["messages"]
        if not isinstance(raw, list) or not raw:
            raise TrainDataError("messages must be a non-empty list", file=path, line=line)
        messages = tuple(_message(m, path, line, i) for i, m in enumerate(raw))
        if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
            raise TrainDataError(
                "no assistant message with content: nothing to learn from", file=path, line=line
            )
        return Record(f"{path}:{line}", messages=messages)
    if "text" in data:
        text = data["text"]
        if not isinstance(text, str) or not text.strip():
            raise TrainDataError("text must be a non-empty string", file=path, line=line)
        return Record(f"{path}:{line}", text=text)
    raise TrainDataError(
        'a record needs "messages" (chat, for --mode sft) or "text" (raw text, for --mode cpt)',
        file=path,
        line=line,
    )


def read_records(path: Path) -> list[Record]:
    return [parse_record(data, path, line) for line, data in iter_jsonl(path, TrainDataError)]


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrainDataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TrainDataError(f"{path}: expected a JSON object")
    return data


def _hash_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def locate_data(path: Path) -> DataSource:
    """The files of a data folder (or one JSONL file), without reading the records yet."""
    path = Path(path).expanduser()
    if path.is_dir():
        train_file = path / "train.jsonl"
        if not train_file.is_file():
            raise TrainDataError(
                f"{path} has no train.jsonl",
                hint="give the folder `ladder finetune prepare` wrote, or a JSONL file",
            )
        val_file = path / "val.jsonl" if (path / "val.jsonl").is_file() else None
        manifest = _read_json(path / "manifest.json")
        report = _read_json(path / "report.json")
        files = [train_file, *([val_file] if val_file else [])]
        data_hash = str((manifest or {}).get("data_hash") or _hash_files(files))
        return DataSource(path, train_file, val_file, data_hash, manifest, report)
    if path.is_file():
        return DataSource(path, path, None, _hash_files([path]))
    raise TrainDataError(f"training data not found: {path}", hint="give a data folder or a JSONL file")


def load_data(path: Path, mode: str, min_examples: int) -> DataSource:
    """Read and check every record; raise on the first problem, naming its file and line."""
    source = locate_data(path)
    source.train = read_records(source.train_file)
    source.val = read_records(source.val_file) if source.val_file else []
    wanted = "chat" if mode == "sft" else "text"
    for record in [*source.train, *source.val]:
        if record.kind != wanted:
            if mode == "sft":
                raise TrainDataError(
                    f"{record.where}: a raw-text record, but --mode sft trains on chat records "
                    '({"messages": [...]})',
                    hint="use --mode cpt for continued pre-training on raw text",
                )
            raise TrainDataError(
                f'{record.where}: a chat record, but --mode cpt trains on raw text ({{"text": ...}})',
                hint="use --mode sft for chat data",
            )
    if len(source.train) < min_examples:
        raise TrainDataError(
            f"{source.train_file} has {len(source.train)} training examples; "
            f"at least {min_examples} are needed",
            hint="add examples, or lower the minimum with --min-examples",
        )
    return source


# ---- encoding -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Encoded:
    """Token ids and pre-shifted targets: ``targets[t]`` is the token position ``t`` must predict,
    or -100 where nothing is learnt. Shifting here, per example, keeps packed examples apart:
    an example's last position never predicts the next example's first token."""

    input_ids: tuple[int, ...]
    targets: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_targets(self) -> int:
        return sum(1 for t in self.targets if t != -100)

    @property
    def labels(self) -> list[int]:
        """Unshifted labels (transformers' convention): -100 where the token is not learnt."""
        return [-100, *self.targets[:-1]]


def end_of_turn_ids(tokenizer: Any) -> set[int]:
    """Tokens that end an assistant turn: EOS and the chat markers of common templates."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for marker in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<end_of_turn>", "</s>"):
        token_id = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(token_id, int) and token_id >= 0 and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return ids


def render(tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool) -> str:
    """A conversation as the model sees it. Without a chat template, the same plain transcript
    the ``hf_local`` backend uses at inference, so training and answering agree."""
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=add_generation_prompt, tokenize=False
        )
        return str(text)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    if add_generation_prompt:
        lines.append("Assistant:")
    return "\n".join(lines)


def _from_labels(ids: list[int], labels: list[int], max_len: int) -> Encoded | None:
    ids, labels = ids[:max_len], labels[:max_len]
    targets = [*labels[1:], -100]
    if all(t == -100 for t in targets):
        return None
    return Encoded(tuple(ids), tuple(targets))


def encode_chat(tokenizer: Any, messages: Sequence[dict[str, str]], max_len: int) -> Encoded | None:
    """Tokens of a conversation, with loss on the assistant's tokens only (see ``chat_tokens``).
    Returns None when truncation to ``max_len`` leaves nothing to learn."""
    ids, labels = chat_tokens(tokenizer, messages)
    return _from_labels(ids, labels, max_len)


def chat_tokens(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids and labels of a conversation of a conversation, with loss on the assistant's tokens only.

    For each assistant turn the template renders the conversation before it (with the
    generation prompt: exactly what the model is given at inference) and through it; the text
    between the two is the reply. Each piece is tokenized on its own and appended, so prompt,
    role markers and any template text after the end-of-turn token are masked (-100) and only
    the reply and its end-of-turn token are learnt.
    """
    stops = end_of_turn_ids(tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    done = ""  # the text already turned into tokens
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:index], add_generation_prompt=True)
        full = render(tokenizer, messages[: index + 1], add_generation_prompt=False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise TrainDataError(
                "the model's chat template renders a conversation differently from its beginning, "
                "so the assistant's tokens cannot be told apart",
                hint="use a model whose template renders earlier turns unchanged (ChatML, Llama 3, ...)",
            )
        prompt_ids = tokenizer(prompt[len(done) :], add_special_tokens=False)["input_ids"]
        reply_ids = list(tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"])
        end = next((i for i, token in enumerate(reply_ids) if token in stops), None)
        if end is None:  # a template without an end-of-turn marker: learn to stop with EOS
            reply_ids.append(tokenizer.eos_token_id)
            end = len(reply_ids) - 1
        ids += prompt_ids + reply_ids
        labels += [-100] * len(prompt_ids) + reply_ids[: end + 1] + [-100] * (len(reply_ids) - end - 1)
        done = full
    return ids, labels


def encode_text(tokenizer: Any, text: str, max_len: int) -> list[Encoded]:
    """Raw text for continued pre-training: every token is learnt; long texts become several
    examples of at most ``max_len`` tokens."""
    ids = list(tokenizer(text)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    pieces = []
    for start in range(0, len(ids), max_len):
        chunk = ids[start : start + max_len]
        encoded = _from_labels(chunk, list(chunk), max_len)
        if encoded is not None:
            pieces.append(encoded)
    return pieces


@dataclass
class EncodedSet:
    examples: list[Encoded]
    truncated: int = 0  # examples cut to max_seq_len
    dropped: int = 0  # examples with nothing left to learn after the cut

    @property
    def n_tokens(self) -> int:
        return sum(len(e) for e in self.examples)


def encode_records(tokenizer: Any, records: Sequence[Record], max_len: int) -> EncodedSet:
    out = EncodedSet([])
    for record in records:
        if record.kind == "text":
            out.examples += encode_text(tokenizer, record.text, max_len)
            continue
        ids, labels = chat_tokens(tokenizer, record.messages)
        out.truncated += len(ids) > max_len
        encoded = _from_labels(ids, labels, max_len)
        if encoded is None:
            out.dropped += 1
        else:
            out.examples.append(encoded)
    return out
