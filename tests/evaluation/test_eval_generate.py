"""``ladder suite generate``: items from a knowledge base, their checks, the files, the review.

The generator is a ``FakeBackend`` whose default reply is built from the prompt: it reads
the passages between ``<<<`` and ``>>>`` and asks about one of their sentences, in the
passage's language, so every check sees realistic input. Asked to answer a question from the
passages only (the second pass), it answers with the sentences the question quotes, as a
careful reader would. One knowledge base (English and Chinese documents) is built per module;
tests only read it.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.knowledge import KnowledgeBase
from assistant.progress import RecordingProgress
from assistant.settings import Settings, load_settings
from assistant.types import Message
from evaluation.generate.checks import Dedup, Thresholds, check, extract_qa, language
from evaluation.generate.consistency import (
    AnswerCheck,
    Candidate,
    agreement,
    read_answer,
    stray_text,
    verdict,
)
from evaluation.generate.engine import (
    MULTI,
    SINGLE,
    GenerateConfig,
    GenerationReport,
    NothingGenerated,
    generate_items,
)
from evaluation.generate.output import apply_review, write_suite
from evaluation.generate.planner import source_names
from evaluation.generate.prompts import NOT_STATED, answer_messages, build_messages, example_texts, sentences
from evaluation.generate.quantities import contradicts_question, quantities
from evaluation.suites.spec import load_suite, suite_review_note
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.conftest import REAL_HOME, TEST_PACK  # imported before tests point LADDER_HOME elsewhere

ROOT = Path(__file__).resolve().parents[2]

DOCUMENTS = {
    "refunds.md": (
        "# Refund policy\n\n"
        "Customers may return any physical product within 30 days of delivery for a full refund. "
        "Approved refunds are paid back to the original payment method within 7 business days. "
        "Digital gift cards and personalised engraving orders cannot be refunded. "
        "Returns of damaged goods need a photo of the damage sent to the support team. "
        "Shipping costs are refunded only when the product arrived broken.\n"
    ),
    "offices.md": (
        "# Offices\n\n"
        "The head office is in Hangzhou, at 88 West Lake Road. "
        "The Shanghai office is open from 9:00 to 18:00 on weekdays. "
        "Visitors must sign in at the front desk and wear a visitor badge. "
        "The Shenzhen office has a lab for testing hardware prototypes. "
        "Parking is free for visitors for the first two hours.\n"
    ),
    "leave_zh.txt": (
        "员工入职满一年后，每年享有十天带薪年假；入职满五年后，每年享有十五天带薪年假。"
        "未休完的年假最多可结转五天到下一年，结转的天数须在次年三月底前休完。"
        "每年有十二天带薪病假。连续病假超过三天的，须提交医院开具的证明。"
        "请年假须至少提前五个工作日在人事系统中提交申请，由直属经理审批。"
        "员工结婚可享受三天婚假，须在领取结婚证后一年内休完。\n"
    ),
    "expenses_zh.txt": (
        "出差住宿标准：一线城市每晚不超过六百元，其他城市每晚不超过四百元。"
        "报销须在出差结束后三十天内提交，并附上发票原件。"
        "餐费补贴每天一百元，无需发票。"
        "乘坐飞机须选择经济舱，特殊情况须经部门总监批准。\n"
    ),
}

_PASSAGE = re.compile(r"<<<\n(.*?)\n>>>", re.S)
_SENTENCE = re.compile(r"[^。！？.!?\n]+[。！？.!?]?")


def _sentences(passage: str) -> list[str]:
    """Whole sentences: not a heading, nor the fragment a chunk's overlap starts with."""
    found = [s.strip() for s in _SENTENCE.findall(passage)]
    if language(passage) == "zh":
        return [s for s in found if len(s) >= 10]
    return [s for s in found if s[:1].isupper() and len(s.split()) >= 6]


ANSWER_SYSTEMS = {answer_messages("q", ["p"], lang)[0].content: lang for lang in ("en", "zh")}


def _opening(sentence: str) -> str:
    """How ``grounded_reply`` quotes a sentence in its question."""
    return sentence[:8] if language(sentence) == "zh" else " ".join(sentence.split()[:5])


def reader_reply(conversation: list[Message]) -> str:
    """The second pass: the sentences whose opening the question quotes, or "not stated"."""
    lang = ANSWER_SYSTEMS[conversation[0].content]
    prompt = conversation[-1].content
    question = _PASSAGE.sub("", prompt)
    found = []
    for passage in _PASSAGE.findall(prompt):
        quoted = [
            s for s in dict.fromkeys(sentences(passage) + _sentences(passage)) if _opening(s) in question
        ]
        found += quoted[:1]
    return ("" if lang == "zh" else " ").join(found) or NOT_STATED[lang]


def grounded_reply(conversation: list[Message]) -> str:
    """A valid item about the prompt's passage(s): a sentence of each, asked about in their language."""
    if conversation[0].content in ANSWER_SYSTEMS:
        return reader_reply(conversation)
    prompt = conversation[-1].content
    passages = _PASSAGE.findall(prompt)
    outside = _PASSAGE.sub("", prompt)  # the request, naming the sentence(s) to ask about
    picked = []
    for passage in passages:
        focus = [s for s in sentences(passage) if s in outside]
        picked.append(focus[0] if focus else _sentences(passage)[0])
    if language(passages[0]) == "zh":
        question = "和".join(f"“{s[:8]}”" for s in picked) + "这条规定是什么？"
        answer = "".join(picked)
    else:
        topics = " and ".join(" ".join(s.split()[:5]) for s in picked)
        question = f"What does the handbook say about {topics}?"
        answer = " ".join(picked)
    return json.dumps({"question": question, "answer": answer}, ensure_ascii=False)


@pytest.fixture(scope="module")
def kb_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LADDER_HOME with knowledge base ``handbook``: two English and two Chinese documents."""
    home = tmp_path_factory.mktemp("generate_home")
    docs = tmp_path_factory.mktemp("generate_docs")
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = load_settings(
        {"home": str(home), "chunk_size": 200, "chunk_overlap": 20, "threads": 1, "allowed_roots": str(docs)}
    )
    with KnowledgeBase.create("handbook", settings) as kb:
        report = kb.add([docs])
    assert report.count("added") == 4
    return home


@pytest.fixture
def settings(kb_home: Path) -> Settings:
    return load_settings({"home": str(kb_home), "chunk_size": 200, "chunk_overlap": 20, "threads": 1})


@pytest.fixture
def handbook(settings: Settings) -> Iterator[KnowledgeBase]:
    with KnowledgeBase.open("handbook", settings) as kb:
        yield kb


def _generate(kb: KnowledgeBase, backend: FakeBackend, **options: object) -> GenerationReport:
    return generate_items(kb, backend, GenerateConfig(**options))  # type: ignore[arg-type]


# ---- parsing and checks ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"question": "How long?", "answer": "30 days"}', ("How long?", "30 days")),
        (
            'Sure!\n```json\n{"question": "How long?", "answer": "30 days"}\n```\nHope it helps',
            ("How long?", "30 days"),
        ),
        ('{"note": 1} then {"Question": "How long?", "Answer": 30}', ("How long?", "30")),
        ('{"问题": "年假几天？", "答案": "十天"}', ("年假几天？", "十天")),
        ('{"question": "How long?", "answer": "30 days",', ("How long?", "30 days")),  # cut off
        ('{"question": "Say \\"hi\\"?", "answer": "hi" }}}', ('Say "hi"?', "hi")),
        ("The question is how long, and the answer is 30 days.", None),
        ('{"question": "How long?"}', None),
        ("", None),
    ],
)
def test_extract_qa_finds_the_pair_in_messy_replies(reply: str, expected: tuple[str, str] | None) -> None:
    assert extract_qa(reply) == expected


PASSAGE_EN = "Customers may return any physical product within 30 days of delivery for a full refund."
PASSAGE_ZH = "员工入职满一年后，每年享有十天带薪年假；入职满五年后，每年享有十五天带薪年假。"


def _check(question: str, answer: str, passages: list[str], lang: str, dedup: Dedup | None = None) -> object:
    reply = json.dumps({"question": question, "answer": answer}, ensure_ascii=False)
    return check(reply, passages, lang, dedup or Dedup(0.8), Thresholds())


@pytest.mark.parametrize(
    ("question", "answer", "passage", "lang", "reason"),
    [
        (
            "Within how many days can a product be returned?",
            "The moon is made of cheese.",
            PASSAGE_EN,
            "en",
            "not_grounded",
        ),
        ("入职满一年的员工有几天年假？", "每年享有十天带薪年假", PASSAGE_ZH, "zh", None),
        (
            "入职满一年的员工有几天年假？",
            "Employees get twenty days of vacation",
            PASSAGE_ZH,
            "zh",
            "wrong_language",
        ),
        ("How many days of leave after one year?", "十天", PASSAGE_ZH, "zh", "wrong_language"),
        ("入职满一年的员工有几天年假？", "每年享有三十天带薪病假和婚假", PASSAGE_ZH, "zh", "not_grounded"),
        ("Customers may return products", "30 days", PASSAGE_EN, "en", "not_a_question"),
        ("What is the capital of France?", "Paris", PASSAGE_EN, "en", "off_topic"),
        ("Within how many days of delivery can a product be returned?", "", PASSAGE_EN, "en", "empty"),
        (
            "Within how many days of delivery can customers return a product?",
            "return a product",
            PASSAGE_EN,
            "en",
            "repeats_question",
        ),
        ("Within how many days of delivery can a product be returned", "30 days", PASSAGE_EN, "en", None),
    ],
)
def test_check_rejects_with_a_reason(
    question: str, answer: str, passage: str, lang: str, reason: str | None
) -> None:
    result = _check(question, answer, [passage], lang)
    if reason is None:
        assert isinstance(result, tuple), result
        assert result[0].endswith(("?", "？"))  # a question without its mark gets one
    else:
        assert result == reason


def test_check_multi_hop_needs_both_passages_and_refuses_duplicates() -> None:
    second = "Approved refunds are paid back to the original payment method within 7 business days."
    both = _check(
        "How long do customers have to return a product, and how soon is the refund paid?",
        "Within 30 days of delivery; the refund is paid within 7 business days.",
        [PASSAGE_EN, second],
        "en",
    )
    assert isinstance(both, tuple)
    only_first = _check(
        "Within how many days of delivery can a product be returned?", "30 days", [PASSAGE_EN, second], "en"
    )
    assert only_first == "one_passage"
    dedup = Dedup(0.8)
    dedup.add("Within how many days of delivery can a product be returned?")
    again = _check(
        "Within how many days of delivery can a product be returned ?", "30 days", [PASSAGE_EN], "en", dedup
    )
    assert again == "duplicate"


def test_a_copy_of_the_prompts_worked_example_is_named_as_such() -> None:
    for lang, passage in (("en", PASSAGE_EN), ("zh", PASSAGE_ZH)):
        example = example_texts(lang, multi=False)[0]
        conversation = build_messages([passage], [], lang)
        assert conversation[2].role == "assistant"
        reply = conversation[2].content  # what a small model often repeats
        assert check(reply, [passage], lang, Dedup(0.8), Thresholds(), [example]) == "copied_example"
        assert check(reply, [passage], lang, Dedup(0.8), Thresholds()) == "off_topic"


def test_the_answer_must_come_from_the_sentence_asked_about() -> None:
    passage = "出差结束后 15 天内，须在财务系统中提交报销申请。经部门总监批准方可乘坐商务舱。"
    focus = ["经部门总监批准方可乘坐商务舱。"]
    wrong = _check_focus("出差结束后多久可以乘坐商务舱？", "15 天", passage, focus)
    right = _check_focus("谁批准后才可以乘坐商务舱？", "部门总监", passage, focus)
    assert wrong == "off_focus"
    assert right == ("谁批准后才可以乘坐商务舱？", "部门总监")


def _check_focus(question: str, answer: str, passage: str, focus: list[str]) -> object:
    reply = json.dumps({"question": question, "answer": answer}, ensure_ascii=False)
    return check(reply, [passage], "zh", Dedup(0.8), Thresholds(), focus=focus)


def test_long_copy_of_the_passage_is_not_an_answer() -> None:
    passage = " ".join(f"Rule {i} says that form {i} is filed with office {i}." for i in range(8))
    result = _check("Which office is form 3 filed with under rule 3?", passage, [passage], "en")
    assert result == "too_long"


def test_sentences_skip_headings_bullets_and_fragments() -> None:
    text = (
        "# Offices / 办公地点\n\nQinghe Goods has three offices in China and Europe.\n"
        "- Shenzhen: 5th floor, Building B, Nanshan Science Park.\nOpen 9:00.\n"
        "访客须在前台登记，并全程佩戴访客证。短句。"
    )
    assert sentences(text) == [
        "Qinghe Goods has three offices in China and Europe.",
        "Shenzhen: 5th floor, Building B, Nanshan Science Park.",
        "访客须在前台登记，并全程佩戴访客证。",
    ]


# ---- numbers, and the second pass --------------------------------------------------------------
RETURNS_ZH = (
    "自签收之日起 30 天内，未使用且包装完好的商品可无理由退货。定制刻字商品和电子礼品卡不支持无理由退货。"
)
LEAVE_ZH = "员工入职满一年后，每年享有 10 天带薪年假；入职满五年后，每年享有 15 天带薪年假。"
MEMBERSHIP_ZH = "近 12 个月累计消费满 2400 元升为青禾会员，满 6800 元升为青松会员。"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("自签收之日起 30 天内", [(30, "天")]),
        ("三十天", [(30, "天")]),
        ("十五天，因为入职满五年后", [(15, "天"), (5, "年")]),
        ("一千二百元", [(1200, "元")]),
        ("３０ 天", [(30, "天")]),  # full-width digits
        ("12 个月", [(12, "个月")]),
        ("within 7 days, 30% off", [(7, "day"), (30, "%")]),
        ("统一管理一线城市", []),  # 一 inside a word is no number
    ],
)
def test_quantities_read_numbers_with_their_units(text: str, expected: list[tuple[int, str]]) -> None:
    assert [(q.value, q.unit) for q in quantities(text)] == [(float(v), u) for v, u in expected]


@pytest.mark.parametrize(
    ("question", "answer", "passages", "contradicts"),
    [
        # The measured item: the question states 30 days, the answer is the leave passage's 15.
        (
            "自签收之日起 30 天内，未使用且包装完好的商品可以无理由退货吗？",
            "15 天，因为入职满五年后每年享有 15 天带薪年假",
            [RETURNS_ZH, LEAVE_ZH],
            True,
        ),
        ("Can a product be returned within 30 days of delivery?", "Within 15 days.", [PASSAGE_EN], True),
        # The question's number answered with the same number: no contradiction.
        ("自签收之日起 30 天内可以无理由退货吗？", "可以，自签收之日起 30 天内", [RETURNS_ZH], False),
        # The question asks for an amount and the passage states the answer's: a premise, not a claim.
        (
            "一笔 150 元的订单运费是多少？",
            "15 元，因为满 200 元才包邮。",
            ["订单满 200 元包邮。", "普通快递运费为 15 元。"],
            False,
        ),
        # One sentence of the passage states both numbers: the answer may name the other.
        ("入职满一年后有 10 天年假吗？", "满五年后才有 15 天", [LEAVE_ZH], False),
        # Different units never contradict.
        ("入职满五年后每年有几天年假？", "15 天", [LEAVE_ZH], False),
    ],
)
def test_an_answer_must_not_contradict_a_number_its_question_states(
    question: str, answer: str, passages: list[str], contradicts: bool
) -> None:
    assert contradicts_question(question, answer, passages) is contradicts


def test_the_contradicting_multi_hop_item_is_rejected_by_the_first_pass() -> None:
    question = "自签收之日起 30 天内，未使用且包装完好的商品可以无理由退货吗？"
    answer = "15 天，因为入职满五年后每年享有 15 天带薪年假"
    assert _check(question, answer, [RETURNS_ZH, LEAVE_ZH], "zh") == "contradicts_question"


def _verdict(question: str, reference: str, second: str, passages: list[str], lang: str = "zh") -> str | None:
    return verdict(Candidate(question, reference, tuple(passages), lang), second, AnswerCheck())


def test_the_stray_character_passes_the_first_pass_and_the_second_drops_it() -> None:
    question = "近 12 个月累计消费满多少元可以升为青禾会员？"
    # The lexical checks find every character of "2400 元升" in the passage ("元升为青禾会员").
    assert isinstance(_check(question, "2400 元升", [MEMBERSHIP_ZH], "zh"), tuple)
    assert _verdict(question, "2400 元升", "2400 元", [MEMBERSHIP_ZH]) == "stray_text"
    assert stray_text("2400 元升", "2400 元", [MEMBERSHIP_ZH]) == "升"
    # The same answer without the stray character is kept, whether the second answer is short
    # or quotes the sentence around it.
    assert _verdict(question, "2400 元", "2400 元", [MEMBERSHIP_ZH]) is None
    assert _verdict(question, "2400 元", "近 12 个月累计消费满 2400 元升为青禾会员", [MEMBERSHIP_ZH]) is None
    # A unit after its number, or a word the passage ends, is no cut word.
    assert stray_text("15 天", "15", [LEAVE_ZH]) is None
    assert stray_text("每年享有 15 天带薪年假", "15 天", [LEAVE_ZH]) is None
    # A made-up word that neither the passage nor the second answer has is stray too.
    refunds = [PASSAGE_EN + " Digital gift cards cannot be refunded."]
    assert _verdict(
        "Which products cannot be refunded?", "gift cards and laptops", "gift cards", refunds, "en"
    ) == ("stray_text")


def test_the_second_pass_drops_a_reference_its_passages_do_not_give() -> None:
    question = "自签收之日起 30 天内，未使用且包装完好的商品可以无理由退货吗？"
    passages = [RETURNS_ZH, LEAVE_ZH]
    second = "可以，自签收之日起 30 天内可无理由退货"
    assert _verdict(question, "15 天，因为入职满五年后", second, passages) == "answer_mismatch"  # numbers
    assert _verdict(question, "可以无理由退货", second, passages) is None
    assert _verdict(question, "定制刻字商品", "电子礼品卡", passages) == "answer_mismatch"  # words
    assert _verdict(question, "可以无理由退货", "资料未提及。", passages) == "unanswerable"
    # The leading amount must agree even when the reasons after it repeat the other's.
    fees = ["东港区冷藏箱插电费为每箱每小时 9 元。"]
    assert _verdict(
        "冷藏箱插电费是多少？", "9 元，因为每箱每小时 9 元。", "42 元，因为每箱每小时 9 元。", fees
    ) == ("answer_mismatch")
    membership = [MEMBERSHIP_ZH]
    assert (
        _verdict(
            "满多少元升为青禾会员？", "2400 元", "满 2400 元升为青禾会员，满 6800 元升为青松会员", membership
        )
        is None
    )
    assert _verdict("When are refunds paid?", "within 7 business days", "not stated", [PASSAGE_EN], "en") == (
        "unanswerable"
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("答案：2400 元\n因为资料中写明……", "2400 元"),
        ('{"question": "x？", "answer": "30 天"}', "30 天"),
        ("Answer: within 30 days", "within 30 days"),
        ("资料未提及", ""),
        ("The passages do not say.", ""),
        ("", ""),
    ],
)
def test_read_answer_takes_the_answer_line(reply: str, expected: str) -> None:
    assert read_answer(reply) == expected


def test_agreement_is_f1_or_the_share_of_the_reference_found() -> None:
    assert agreement("2400 元", "近 12 个月累计消费满 2400 元升为青禾会员") == 1.0
    assert agreement("部门总监", "部门经理") == pytest.approx(0.5)
    assert agreement("定制刻字商品", "电子礼品卡") <= 0.2  # one shared character (品)
    # A reference that gives its reason agrees with the bare answer, but not with its opposite.
    assert agreement("15 元，因为满 200 元才包邮", "15 元") == 1.0
    question = "定制刻字商品可以无理由退货吗？"
    assert _verdict(question, "不可以", "可以", [RETURNS_ZH]) == "answer_mismatch"
    assert (
        _verdict(question, "可以", "不可以，因为定制刻字商品不支持无理由退货", [RETURNS_ZH])
        == "answer_mismatch"
    )
    assert _verdict(question, "不可以", "不可以无理由退货", [RETURNS_ZH]) is None
    long_second = "自签收之日起 30 天内可无理由退货。定制刻字商品和电子礼品卡不支持无理由退货。"
    assert _verdict("签收后多久内可以无理由退货？", "30 天内", long_second, [RETURNS_ZH]) is None
    assert agreement("anything", "") == 0.0


# ---- generating ------------------------------------------------------------------------------
def test_generates_n_items_with_a_mix_of_hops_and_languages(handbook: KnowledgeBase) -> None:
    progress = RecordingProgress()
    backend = FakeBackend(default=grounded_reply)
    report = generate_items(handbook, backend, GenerateConfig(n=12, multi_hop_share=0.25), progress)
    assert len(report.items) == 12 and not report.short
    assert report.count(SINGLE) == 9 and report.count(MULTI) == 3
    assert report.calls == len(backend.calls) == 12 + sum(report.rejected.values())
    assert not report.rejected, report.examples  # a compliant generator loses nothing
    chunk_texts = {c: t for c, t in _chunk_texts(handbook).items()}
    languages = set()
    for item in report.items:
        row = item.row()
        assert row["tags"][:2] == ["generated", item.kind]
        assert row["tags"][2] == f"lang:{item.lang}"
        assert len(row["reference_contexts"]) == (2 if item.kind == MULTI else 1)
        # The contexts are the chunks' own texts, and their ids are the knowledge base's.
        assert [chunk_texts[i] for i in row["reference_context_ids"]] == row["reference_contexts"]
        # file#chunk, the file named as in the documents folder, never by its absolute path.
        sources = row["source"] if item.kind == MULTI else [row["source"]]
        assert isinstance(row["source"], list if item.kind == MULTI else str)
        assert sources == [f"{c.name}#{c.number}" for c in item.chunks]
        assert all(
            re.fullmatch(r"(refunds\.md|offices\.md|leave_zh\.txt|expenses_zh\.txt)#\d+", s) for s in sources
        )
        if item.lang == "zh":
            assert re.search(r"[\u4e00-\u9fff]", item.question) and item.question.endswith("？")
            assert all(language(c) == "zh" for c in row["reference_contexts"])
        else:
            assert not re.search(r"[\u4e00-\u9fff]", item.question)
        languages.add(item.lang)
    assert languages == {"zh", "en"}
    assert progress.stages == ["reading chunks", "generating 12 questions"]
    assert progress.events.count(("advance", 1)) == 12
    # A Chinese chunk gets a Chinese prompt, so a small model answers in Chinese.
    zh_calls = [conv for conv, _ in backend.calls if "资料" in conv[-1].content]
    assert zh_calls and all("问题和答案都用中文" in conv[0].content for conv in zh_calls)
    # The worked example is a chat turn before the request, and the request names one
    # sentence of the passage to ask about.
    for conv in zh_calls:
        assert [m.role for m in conv] == ["system", "user", "assistant", "user"]
        request = conv[-1].content
        passage = _PASSAGE.findall(request)[0]
        focus = request.split("并给出答案：\n")[1].split("\n")[0]
        assert focus and focus in passage


def _chunk_texts(kb: KnowledgeBase) -> dict[str, str]:
    stored = kb.collection.get(include=["documents"])
    return dict(zip(stored["ids"], stored["documents"], strict=True))


def test_the_seed_fixes_the_items(handbook: KnowledgeBase) -> None:
    first = _generate(handbook, FakeBackend(default=grounded_reply), n=5, seed=7)
    again = _generate(handbook, FakeBackend(default=grounded_reply), n=5, seed=7)
    other = _generate(handbook, FakeBackend(default=grounded_reply), n=5, seed=8)
    questions = [i.question for i in first.items]
    assert questions == [i.question for i in again.items]
    assert questions != [i.question for i in other.items]


def test_garbage_and_ungrounded_replies_are_rejected_counted_and_retried(handbook: KnowledgeBase) -> None:
    replies = iter(
        [
            "Sure! Here is a good question about the passage.",  # no JSON at all
            json.dumps(
                {"question": "What is the refund policy for the moon?", "answer": "Cheese on Mondays."}
            ),
        ]
    )

    def flaky(conversation: list[Message]) -> str:
        return next(replies, None) or grounded_reply(conversation)

    backend = FakeBackend(default=flaky)
    report = _generate(backend=backend, kb=handbook, n=6, multi_hop_share=0.0)
    assert len(report.items) == 6
    assert report.rejected["no_json"] == 1
    assert report.examples["no_json"] == "Sure! Here is a good question about the passage."
    assert report.rejected["off_topic"] + report.rejected["not_grounded"] == 1
    assert report.calls == 8
    # The two rejected replies were retried on the same passage with sampling.
    sampled = [params for _, params in backend.calls if params.temperature > 0]
    assert len(sampled) == 2 and all(p.seed is not None for p in sampled)


def test_a_generator_that_never_complies_stops_at_the_bound_and_writes_nothing(
    handbook: KnowledgeBase, tmp_path: Path
) -> None:
    backend = FakeBackend(default='{"question": "What is the capital of France?", "answer": "Paris"}')
    report = _generate(handbook, backend, n=4, max_attempts=3)
    assert report.items == [] and report.short
    assert report.calls == 12 == len(backend.calls)
    assert sum(report.rejected.values()) == 12
    with pytest.raises(NothingGenerated) as error:
        write_suite(report, tmp_path / "out", "nothing", "handbook")
    assert error.value.exit_code == 1
    assert not (tmp_path / "out").exists()


def test_more_items_than_chunks_reuses_chunks_without_repeating_questions(handbook: KnowledgeBase) -> None:
    chunks = len(_chunk_texts(handbook))
    backend = FakeBackend(default=grounded_reply)
    report = _generate(handbook, backend, n=chunks + 4, multi_hop_share=0.0)
    assert len(report.items) == chunks + 4
    assert len({i.question for i in report.items}) == len(report.items)
    assert any(
        "Do not repeat these questions" in c[-1].content or "不要重复" in c[-1].content
        for c, _ in backend.calls
    )


def test_multi_hop_falls_back_to_single_hop_without_a_same_language_pair(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text(DOCUMENTS["refunds.md"][:150], encoding="utf-8")
    (docs / "leave_zh.txt").write_text(DOCUMENTS["leave_zh.txt"][:80], encoding="utf-8")
    settings = load_settings({"home": str(tmp_path / "home"), "allowed_roots": str(docs)})
    with KnowledgeBase.create("pairless", settings) as kb:
        kb.add([docs])
        report = _generate(kb, FakeBackend(default=grounded_reply), n=2, multi_hop_share=1.0)
    assert [i.kind for i in report.items] == [SINGLE, SINGLE]
    assert {i.lang for i in report.items} == {"en", "zh"}


def _mismatched_then_grounded(bad: int) -> Callable[[list[Message]], str]:
    """The first ``bad`` generation replies pair a question about one sentence with another
    sentence as the answer (every word grounded, so the first pass keeps them); then grounded."""
    made = iter(range(1000))

    def reply(conversation: list[Message]) -> str:
        if conversation[0].content in ANSWER_SYSTEMS or next(made) >= bad:
            return grounded_reply(conversation)
        good = json.loads(grounded_reply(conversation))
        passage = _PASSAGE.findall(conversation[-1].content)[0]
        other = next(
            x for x in _sentences(passage) if x not in good["answer"] and _opening(x) not in good["question"]
        )
        lang = language(passage)
        question = (
            f"“{other[:8]}”这条规定是什么？"
            if lang == "zh"
            else f"What does the handbook say about {_opening(other)}?"
        )
        return json.dumps({"question": question, "answer": good["answer"]}, ensure_ascii=False)

    return reply


def test_the_second_pass_drops_items_whose_answer_does_not_follow_and_counts_them(
    handbook: KnowledgeBase, tmp_path: Path
) -> None:
    backend = FakeBackend(default=_mismatched_then_grounded(bad=3))
    config = GenerateConfig(n=6, multi_hop_share=0.0, answer_check=AnswerCheck())
    report = generate_items(handbook, backend, config)
    assert len(report.items) == 6
    assert report.rejected == {"answer_mismatch": 3}, report.examples
    assert "answered from the passages" in report.examples["answer_mismatch"]
    assert report.answer_calls == 9 == len(report.second_pass)  # every item that passed the first pass
    assert report.calls == 9 and len(backend.calls) == report.calls + report.answer_calls
    # Every kept item: the question quotes the sentence its answer is.
    for item in report.items:
        assert _opening(item.answer) in item.question
    dropped = [c for c, _, why in report.second_pass if why]
    assert len(dropped) == 3 and all(_opening(c.answer) not in c.question for c in dropped)
    # The second-pass prompt asks for an answer from the passages only, in their language.
    answer_prompts = [conv for conv, _ in backend.calls if conv[0].content in ANSWER_SYSTEMS]
    assert len(answer_prompts) == 9 and all(
        conv[-1].content.rstrip().endswith(("only.", "只回复答案。")) for conv in answer_prompts
    )
    # The review file shows each kept item's second answer beside its reference.
    paths = write_suite(report, tmp_path, "checked", "handbook")
    with paths.review.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    seconds = {c.question: second for c, second, why in report.second_pass if why is None}
    assert [r["second_answer"] for r in rows] == [seconds[i.question] for i in report.items]
    assert all(r["second_answer"] for r in rows)
    # Without the second pass the same generator keeps the mismatched items.
    unchecked = generate_items(
        handbook,
        FakeBackend(default=_mismatched_then_grounded(bad=3)),
        GenerateConfig(n=6, multi_hop_share=0.0),
    )
    assert not unchecked.rejected and unchecked.answer_calls == 0
    assert sum(_opening(i.answer) not in i.question for i in unchecked.items) == 3


def test_the_second_pass_drops_a_stray_character(handbook: KnowledgeBase) -> None:
    """A Chinese answer with a character its passage and the second answer lack is dropped."""
    strays = iter(range(1000))

    def reply(conversation: list[Message]) -> str:
        text = grounded_reply(conversation)
        if (
            conversation[0].content in ANSWER_SYSTEMS
            or "资料" not in conversation[-1].content
            or next(strays)
        ):
            return text
        good = json.loads(text)
        return json.dumps(
            {"question": good["question"], "answer": good["answer"].rstrip("。") + "升"}, ensure_ascii=False
        )

    config = GenerateConfig(n=6, multi_hop_share=0.0, answer_check=AnswerCheck())
    report = generate_items(handbook, FakeBackend(default=reply), config)
    assert report.rejected == {"stray_text": 1}, report.examples
    assert len(report.items) == 6 and not any(i.answer.endswith("升") for i in report.items)


def test_no_absolute_path_in_a_written_suite(handbook: KnowledgeBase, tmp_path: Path) -> None:
    report = _generate(handbook, FakeBackend(default=grounded_reply), n=8, multi_hop_share=0.5)
    assert report.count(MULTI) and report.count(SINGLE)
    folders = {str(Path(c.source).parent) for i in report.items for c in i.chunks}
    assert all(Path(f).is_absolute() for f in folders)  # the knowledge base knows them by full path
    paths = write_suite(report, tmp_path / "suites", "handbook_gen", "handbook")
    for path in (paths.jsonl, paths.spec, paths.review):
        text = path.read_text(encoding="utf-8-sig")
        assert not any(f in text for f in folders), path
        assert str(tmp_path) not in text, path  # nor where the suite was written
    for line in paths.jsonl.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for source in row["source"] if isinstance(row["source"], list) else [row["source"]]:
            assert not source.startswith("/") and re.fullmatch(r"[\w./-]+#\d+", source)


def test_source_names_are_relative_to_the_folder_the_files_share() -> None:
    names = source_names(["/srv/kb/policies/leave.md", "/srv/kb/refunds.md", "/srv/kb/policies/hr/pay.md"])
    assert names == {
        "/srv/kb/policies/leave.md": "policies/leave.md",
        "/srv/kb/refunds.md": "refunds.md",
        "/srv/kb/policies/hr/pay.md": "policies/hr/pay.md",
    }
    assert source_names(["/srv/kb/only.md"]) == {"/srv/kb/only.md": "only.md"}
    assert source_names(["notes.md"]) == {"notes.md": "notes.md"}


def test_config_refuses_bad_values() -> None:
    for bad in ({"n": 0}, {"n": -3}, {"n": 5, "multi_hop_share": 1.5}, {"n": 5, "max_attempts": 0}):
        with pytest.raises(ValueError):
            GenerateConfig(**bad)


# ---- files and review ------------------------------------------------------------------------
def test_written_suite_loads_and_the_review_drops_and_edits_items(
    handbook: KnowledgeBase, tmp_path: Path
) -> None:
    report = _generate(handbook, FakeBackend(default=grounded_reply), n=6)
    paths = write_suite(report, tmp_path / "suites", "handbook_gen", "handbook")
    suite = load_suite(paths.spec)
    assert len(suite) == 6 and suite.spec.kind == "qa"
    # Generated, and not reviewed until the review is applied.
    assert suite.spec.generated and not suite.spec.reviewed and suite.spec.needs_review
    assert suite.spec.reviewed_at == "" and suite.spec.review == {}
    note = suite_review_note(paths.spec)
    assert note is not None and "no person has reviewed it" in note
    assert f"ladder suite apply-review {paths.review}" in note
    assert {m.label for m in suite.metrics} >= {"token_f1", "hit@3", "mrr"}
    first = suite.items[0]
    assert "generated" in first.question.tags
    assert first.reference_context_ids and first.question.reference_contexts
    assert first.question.user_input == report.items[0].question

    with paths.review.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == [i.id for i in report.items]
    assert {r["keep"] for r in rows} == {"yes"}
    assert {r["type"] for r in rows} <= {"single_hop", "multi_hop"}
    rows[1]["keep"] = "no"
    rows[4]["keep"] = "No "
    rows[2]["answer"] = "An answer fixed by a person."
    with paths.review.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    result = apply_review(paths.review)
    assert (result.kept, result.dropped, result.edited) == (4, 2, 1)
    assert result.spec == paths.spec
    reviewed = load_suite(paths.spec)
    assert reviewed.spec.generated and reviewed.spec.reviewed and not reviewed.spec.needs_review
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", reviewed.spec.reviewed_at)
    assert reviewed.spec.review == {"kept": 4, "dropped": 2, "edited": 1}
    assert suite_review_note(paths.spec) is None
    assert paths.spec.read_text(encoding="utf-8").startswith("# Generated by")  # comments kept
    kept_ids = [i.question.id for i in reviewed.items]
    assert kept_ids == [report.items[i].id for i in (0, 2, 3, 5)]
    assert reviewed.items[1].question.reference == "An answer fixed by a person."
    assert apply_review(paths.review).dropped == 0  # applying again changes nothing
    assert load_suite(paths.spec).spec.review == {"kept": 4, "dropped": 2, "edited": 1}
    assert len(re.findall(r"^reviewed:", paths.spec.read_text(encoding="utf-8"), re.M)) == 1

    for row in rows:
        row["keep"] = "no"
    with paths.review.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    from assistant.errors import ConfigError

    with pytest.raises(ConfigError, match="every item"):
        apply_review(paths.review)
    assert len(load_suite(paths.spec)) == 4  # left as it was


def test_a_hand_written_suite_counts_as_reviewed_and_bad_review_keys_are_refused(tmp_path: Path) -> None:
    from evaluation.suites.spec import SuiteError

    hand = load_suite(ROOT / "datasets" / "suites" / "demo_qa.yaml").spec
    assert not hand.generated and hand.reviewed and not hand.needs_review
    assert suite_review_note(ROOT / "datasets" / "suites" / "demo_qa.yaml") is None
    assert suite_review_note(tmp_path / "gone.yaml") is None
    (tmp_path / "items.jsonl").write_text('{"user_input": "q?", "reference": "a"}\n', encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nkind: qa\ndata: items.jsonl\ngenerated: true\nreviewed: maybe\n", encoding="utf-8"
    )
    with pytest.raises(SuiteError, match="reviewed must be true or false") as error:
        load_suite(bad)
    assert error.value.line == 5
    marked = tmp_path / "marked.yaml"
    marked.write_text(
        "name: x\nkind: qa\ndata: items.jsonl\ngenerated: true\nreviewed: true\n"
        "reviewed_at: 2026-12-06T07:00:00Z\n",  # unquoted: YAML reads a datetime
        encoding="utf-8",
    )
    spec = load_suite(marked).spec
    assert spec.reviewed and spec.reviewed_at.startswith("2026-12-06")


def test_existing_files_are_not_overwritten_without_force(handbook: KnowledgeBase, tmp_path: Path) -> None:
    from assistant.errors import ConfigError

    report = _generate(handbook, FakeBackend(default=grounded_reply), n=2)
    write_suite(report, tmp_path, "twice", "handbook")
    with pytest.raises(ConfigError, match="already exists"):
        write_suite(report, tmp_path, "twice", "handbook")
    write_suite(report, tmp_path, "twice", "handbook", force=True)


# ---- CLI --------------------------------------------------------------------------------------
@pytest.fixture
def fake_generator(monkeypatch: pytest.MonkeyPatch) -> Callable[[], FakeBackend]:
    """``get_backend`` returns a grounded fake whatever --generator says; the last one is kept."""
    made: list[FakeBackend] = []

    def get_backend(model: str | None, settings: Settings) -> FakeBackend:
        made.append(FakeBackend(default=grounded_reply, model_id=f"fake-for-{model}"))
        return made[-1]

    monkeypatch.setattr("assistant.service.get_backend", get_backend)
    return lambda: made[-1]


def test_cli_generate_validate_and_apply_review(
    kb_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_generator: Callable[[], FakeBackend],
) -> None:
    out = tmp_path / "suites"
    args = ["suite", "generate", "--kb", "handbook", "--n", "5", "--out", str(out), "--home", str(kb_home)]
    code, stdout, stderr = run(args, capsys)
    assert code == 0, stderr
    assert "wrote 5 items" in stdout and "handbook_generated.review.csv" in stdout
    assert "generating 5 questions" in stderr  # the progress bar
    assert fake_generator().model_id == "fake-for-qwen2.5-coder-0.5b"  # the `model` setting by default
    # The second pass is on by default: one more call per item, none dropped for this generator.
    assert "second pass: 5 questions answered again from their chunks, 0 dropped" in stdout
    assert len(fake_generator().calls) == 10
    lines = (out / "handbook_generated.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [f"handbook_generated-{i:03d}" for i in range(1, 6)]

    code, stdout, _ = run(["suite", "validate", str(out / "handbook_generated.yaml")], capsys)
    assert code == 0 and "5 items" in stdout and "kind qa" in stdout and "generated 5" in stdout
    assert "reviewed   no" in stdout and "apply-review" in stdout

    code, _, stderr = run(args, capsys)
    assert code == 2 and "already exists" in stderr

    review = out / "handbook_generated.review.csv"
    text = review.read_text(encoding="utf-8-sig").replace(
        "yes,handbook_generated-002", "no,handbook_generated-002"
    )
    review.write_text(text, encoding="utf-8-sig")
    code, stdout, _ = run(["suite", "apply-review", str(review)], capsys)
    assert code == 0 and "kept 4, dropped 1" in stdout and "reviewed: true" in stdout
    code, stdout, _ = run(["suite", "validate", str(out / "handbook_generated.yaml")], capsys)
    assert code == 0 and "4 items" in stdout and "reviewed   yes" in stdout

    code, stdout, _ = run([*args, "--force", "--no-answer-check"], capsys)
    assert code == 0 and "second pass" not in stdout and len(fake_generator().calls) == 5


def test_cli_errors_have_exit_codes_and_write_nothing(
    kb_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "suites"
    base = ["suite", "generate", "--out", str(out), "--home", str(kb_home)]
    code, _, stderr = run([*base, "--kb", "nope"], capsys)
    assert code == 3 and "no knowledge base named 'nope'" in stderr
    code, _, stderr = run([*base, "--kb", "handbook", "--n", "0"], capsys)
    assert code == 2 and "n must be a positive integer" in stderr
    code, _, stderr = run([*base, "--kb", "handbook", "--n", "3", "--multi-hop", "2"], capsys)
    assert code == 2 and "multi_hop_share" in stderr
    # The plain fake echoes the prompt, whose only JSON is the worked example, about a canteen.
    code, _, stderr = run(
        [*base, "--kb", "handbook", "--n", "2", "--max-attempts", "2", "--generator", "fake"], capsys
    )
    assert code == 1
    assert "no_json" in stderr and "0 valid item(s) of 2" in stderr and "nothing was written" in stderr
    assert not out.exists()

    empty_home = ["--home", str(tmp_path / "empty_home")]
    assert run(["kb", "create", "empty", *empty_home], capsys)[0] == 0
    code, _, stderr = run(["suite", "generate", "--kb", "empty", "--out", str(out), *empty_home], capsys)
    assert code == 1 and "has no chunk" in stderr and "ladder kb add empty" in stderr
    assert not out.exists()

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: qa\ndata: missing.jsonl\n", encoding="utf-8")
    code, _, stderr = run(["suite", "validate", str(bad)], capsys)
    assert code == 2 and "file not found" in stderr
    code, _, stderr = run(["suite", "apply-review", str(tmp_path / "none.review.csv")], capsys)
    assert code == 2 and "review file not found" in stderr


def test_cli_short_run_warns_with_counts(
    kb_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fewer valid items than asked: a warning with counts and reasons, and the items that passed."""
    calls = iter(range(1000))

    def every_other(conversation: list[Message]) -> str:
        if conversation[0].content in ANSWER_SYSTEMS:  # the second pass answers as a reader would
            return grounded_reply(conversation)
        return grounded_reply(conversation) if next(calls) % 4 == 0 else "no idea"

    monkeypatch.setattr(
        "assistant.service.get_backend", lambda model, settings: FakeBackend(default=every_other)
    )
    out = tmp_path / "short"
    args = ["suite", "generate", "--kb", "handbook", "--n", "6", "--max-attempts", "1", "--out", str(out)]
    code, _, stderr = run([*args, "--home", str(kb_home), "--multi-hop", "0"], capsys)
    assert code == 0, stderr
    match = re.search(
        r"warning: (\d) valid item\(s\) of 6 asked for, after 6 model calls \((\d) replies rejected", stderr
    )
    assert match, stderr
    assert int(match.group(1)) + int(match.group(2)) == 6 and int(match.group(1)) >= 1
    assert "no_json" in stderr
    assert len((out / "handbook_generated.jsonl").read_text(encoding="utf-8").splitlines()) == int(
        match.group(1)
    )


def test_importing_the_suite_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import ui.cli.suite\n"
        "heavy = ('chromadb', 'torch', 'sentence_transformers', 'jieba', 'transformers', 'ragas')\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


# ---- a real small model -----------------------------------------------------------------------
@pytest.mark.slow
def test_real_small_model_run_finishes_and_keeps_only_valid_items(
    handbook: KnowledgeBase, tmp_path: Path
) -> None:
    from assistant.models.pull import installed_pack_dir

    pack_settings = load_settings({"home": str(REAL_HOME), "threads": 2, "batch_size": 4})
    folder = installed_pack_dir(TEST_PACK, pack_settings)
    if folder is None:
        pytest.skip(f"{TEST_PACK} is not installed in {REAL_HOME}")
    from assistant.backends.hf.local import HFLocalBackend

    backend = HFLocalBackend(folder, pack_settings)
    config = GenerateConfig(n=2, max_attempts=2, max_new_tokens=64, multi_hop_share=0.0)
    report = generate_items(handbook, backend, config)
    assert report.calls <= 4
    assert len(report.items) + sum(report.rejected.values()) == report.calls
    for item in report.items:  # each kept item passes the checks again on its own
        reply = json.dumps({"question": item.question, "answer": item.answer}, ensure_ascii=False)
        assert check(reply, [c.text for c in item.chunks], item.lang, Dedup(0.8), Thresholds()) == (
            item.question,
            item.answer,
        )
    if report.items:
        paths = write_suite(report, tmp_path, "real", "handbook")
        assert len(load_suite(paths.spec)) == len(report.items)
