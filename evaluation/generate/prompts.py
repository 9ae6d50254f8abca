"""The prompts that ask a model for one question/answer pair about a passage (or two).

What a 0.5B model needs, measured on the demo knowledge base (qwen2.5-coder-0.5b):
- **The passage's language.** A Chinese passage gets a Chinese prompt, so the model writes
  Chinese; an English prompt over a Chinese passage gives English or mixed questions.
- **A focus sentence.** Asked about a whole passage, the model copies the passage into the
  "question" (3 of 3 Chinese passages); asked about one sentence of it, it writes a real
  question (2 of 2). Sentences are drawn per chunk in a seeded order, so a chunk used
  twice is asked about a different sentence.
- **The worked example as a chat turn**, not inline: inline, the model copied the example
  (a canteen, shipping) as its answer in 3 of 8 replies; as a previous user/assistant
  turn it followed the form and wrote about the passage. The example's topic is far from
  business documents, so a copy still fails the checks (``copied_example``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from assistant.types import Message

ZH = "zh"
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)\s+|\n+")
_BULLET = re.compile(r"^(?:[-*•]|\d+[.)、])\s+")
_CJK = re.compile(r"[\u3400-\u9fff]")


def sentences(text: str) -> list[str]:
    """The sentences of a chunk worth asking about: no headings, no fragments."""
    found = []
    for piece in _SENTENCE_END.split(text):
        piece = _BULLET.sub("", piece.strip())
        if not piece or piece.startswith("#"):
            continue
        if len(_CJK.findall(piece)) >= 8 or len(piece.split()) >= 5:
            found.append(piece)
    return found


_SYSTEM = {
    "en": "You write exam questions about a company's documents. Reply with one JSON object only: "
    '{"question": ..., "answer": ...}. The question ends with "?"; the answer is short, uses the '
    "passage's own words, and is in English.",
    ZH: '你为公司文档出考题。只回复一个 JSON 对象：{"question": 问题, "answer": 答案}。'
    "问题以“？”结尾；答案简短，使用资料中的原话，问题和答案都用中文。",
}
_LABELS = {"en": (["Passage"], ["Passage 1", "Passage 2"]), ZH: (["资料"], ["资料一", "资料二"])}
_ASK = {
    "en": (
        "Ask one question about this sentence of the passage, and answer it:\n",
        "Ask one question that needs both of these sentences to answer (for example, comparing or "
        "combining them), and answer it:\n",
    ),
    ZH: (
        "根据资料中的这句话提一个问题，并给出答案：\n",
        "提一个需要同时用到这两句话才能回答的问题（例如比较或合并），并给出答案：\n",
    ),
}
_ASK_WHOLE = {
    "en": ("Ask one question about a specific fact in the passage, and answer it.\n",) * 2,
    ZH: ("根据资料中的一个具体事实提一个问题，并给出答案。\n",) * 2,
}
_AVOID = {"en": "Do not repeat these questions:\n", ZH: "不要重复这些问题：\n"}
_REPLY = {"en": "Reply with JSON only.", ZH: "只回复 JSON。"}
# (passages, focus sentences, the reply), for one passage and for two.
_EXAMPLES: dict[str, tuple[tuple[list[str], list[str], str], ...]] = {
    "en": (
        (
            ["The staff canteen serves lunch from 11:30 to 13:30 every day. Employees eat for free."],
            ["The staff canteen serves lunch from 11:30 to 13:30 every day."],
            '{"question": "When does the staff canteen serve lunch?", '
            '"answer": "From 11:30 to 13:30 every day."}',
        ),
        (
            ["Orders over 200 yuan ship for free.", "Standard shipping costs 15 yuan."],
            ["Orders over 200 yuan ship for free.", "Standard shipping costs 15 yuan."],
            '{"question": "How much is shipping for an order of 150 yuan?", '
            '"answer": "15 yuan: only orders over 200 yuan ship for free."}',
        ),
    ),
    ZH: (
        (
            ["员工食堂每天 11:30 至 13:30 供应午餐。员工凭工卡免费就餐。"],
            ["员工食堂每天 11:30 至 13:30 供应午餐。"],
            '{"question": "员工食堂每天什么时候供应午餐？", "answer": "每天 11:30 至 13:30"}',
        ),
        (
            ["订单满 200 元包邮。", "普通快递运费为 15 元。"],
            ["订单满 200 元包邮。", "普通快递运费为 15 元。"],
            '{"question": "一笔 150 元的订单运费是多少？", "answer": "15 元，因为满 200 元才包邮。"}',
        ),
    ),
}


def _request(passages: Sequence[str], focus: Sequence[str], lang: str, avoid: Sequence[str] = ()) -> str:
    multi = len(passages) > 1
    text = (
        _passages_block(passages, lang)
        + (_ASK if focus else _ASK_WHOLE)[lang][multi]
        + "".join(f"{s}\n" for s in focus)
    )
    if avoid:
        text += _AVOID[lang] + "".join(f"  - {q}\n" for q in avoid)
    return text + _REPLY[lang]


def build_messages(
    passages: Sequence[str], focus: Sequence[str], lang: str, avoid: Sequence[str] = ()
) -> list[Message]:
    """System, the worked example as a user/assistant turn, then the request for ``passages``."""
    lang = ZH if lang == ZH else "en"
    example_passages, example_focus, example_reply = _EXAMPLES[lang][len(passages) > 1]
    return [
        Message("system", _SYSTEM[lang]),
        Message("user", _request(example_passages, example_focus, lang)),
        Message("assistant", example_reply),
        Message("user", _request(passages, focus, lang, avoid)),
    ]


# The second pass (``evaluation.generate.consistency``): the generator answers its own question
# from the passages only. The refusal is a fixed phrase, so a reply that finds no answer is read
# as none; the example turn shows a short answer in the passage's words.
NOT_STATED = {"en": "not stated", ZH: "资料未提及"}
_ANSWER_SYSTEM = {
    "en": "You answer a question from the given passages only, never from other knowledge. If the "
    f"passages do not give the answer, reply only: {NOT_STATED['en']}. Keep the answer short and use "
    "the passages' own words.",
    ZH: "你只根据给出的资料回答问题，不使用资料以外的知识。资料没有给出答案时，只回复："
    f"{NOT_STATED[ZH]}。答案简短，使用资料中的原话。",
}
_QUESTION = {"en": "Question: {question}\nReply with the answer only.", ZH: "问题：{question}\n只回复答案。"}


def _passages_block(passages: Sequence[str], lang: str) -> str:
    labels = _LABELS[lang][len(passages) > 1]
    sep = "：" if lang == ZH else ":"
    return "".join(f"{label}{sep}\n<<<\n{p}\n>>>\n\n" for label, p in zip(labels, passages, strict=True))


def answer_messages(question: str, passages: Sequence[str], lang: str) -> list[Message]:
    """Ask the generator to answer ``question`` from ``passages`` alone (the second pass)."""
    lang = ZH if lang == ZH else "en"
    example_passages, _, example_reply = _EXAMPLES[lang][len(passages) > 1]
    example = json.loads(example_reply)
    return [
        Message("system", _ANSWER_SYSTEM[lang]),
        Message(
            "user",
            _passages_block(example_passages, lang) + _QUESTION[lang].format(question=example["question"]),
        ),
        Message("assistant", example["answer"]),
        Message("user", _passages_block(passages, lang) + _QUESTION[lang].format(question=question)),
    ]


def example_texts(lang: str, multi: bool) -> list[str]:
    """The worked example's question and answer, for the ``copied_example`` check."""
    reply = json.loads(_EXAMPLES[ZH if lang == ZH else "en"][multi][2])
    return [f"{reply['question']} {reply['answer']}"]


__all__ = ["NOT_STATED", "answer_messages", "build_messages", "example_texts", "sentences"]
