"""``synthesize``: grounded pairs from a knowledge base with a scripted teacher, paraphrases, and the CLI.

The teacher is a ``FakeBackend`` whose replies are built from the prompt: a generation
prompt gets a question about the first sentence of its passage (in the passage's
language), a paraphrase prompt gets the question with a new opening. One knowledge base
(two English documents, one Chinese) is built per module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.backends.fake import FakeBackend
from assistant.knowledge import KnowledgeBase
from assistant.settings import Settings, load_settings
from assistant.text import language
from assistant.types import Message
from evaluation.generate.engine import GenerateConfig, GenerationReport, generate_items
from evaluation.suites.source import SuiteFiles
from finetune.data.dedup import Deduplicator, jaccard, shingles
from finetune.data.load import Example, load_file
from finetune.data.synth import SynthConfig, SynthReport, check_paraphrase, synthesize, write_rows
from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)

DOCUMENTS = {
    "refunds.md": (
        "Customers may return any physical product within 30 days of delivery for a full refund. "
        "Approved refunds are paid back to the original payment method within 7 business days. "
        "Digital gift cards and personalised engraving orders cannot be refunded.\n"
    ),
    "offices.md": (
        "The head office is in Hangzhou, at 88 West Lake Road. "
        "The Shanghai office is open from 9:00 to 18:00 on weekdays. "
        "Visitors must sign in at the front desk and wear a visitor badge.\n"
    ),
    "leave_zh.txt": (
        "员工入职满一年后，每年享有十天带薪年假；入职满五年后，每年享有十五天带薪年假。"
        "每年有十二天带薪病假。连续病假超过三天的，须提交医院开具的证明。\n"
    ),
}
_PASSAGE = re.compile(r"<<<\n(.*?)\n>>>", re.S)
_SENTENCE = re.compile(r"[^。！？.!?\n]+[。！？.!?]?")
REPHRASINGS_EN = (
    "Which rule in the handbook covers {}?",
    "How does the handbook describe {}?",
    "According to the policy, what applies to {}?",
)
REPHRASINGS_ZH = ("关于“{}”，公司是怎样规定的？", "请问“{}”这一条具体说了什么？", "“{}”的相关要求有哪些？")


class Teacher:
    """Scripted replies; ``bad_first_paraphrase`` makes the first paraphrase a copy of the question."""

    def __init__(self, bad_first_paraphrase: bool = False) -> None:
        self.paraphrase_calls = 0
        self.bad_first = bad_first_paraphrase
        self.asked: dict[str, int] = {}  # question -> paraphrases written for it

    def __call__(self, conversation: list[Message]) -> str:
        prompt = conversation[-1].content
        if conversation[0].content in ("You rephrase questions.", "你负责改写问题。"):
            return self._paraphrase(prompt)
        passage = _PASSAGE.findall(prompt)[0]
        used = len(re.findall(r"^ +- .*[?？]$", prompt, re.M))
        sentences = [s.strip() for s in _SENTENCE.findall(passage) if len(s.strip()) >= 10]
        # The focus sentence the generator asks about (listed after the passage), as a
        # careful teacher would; otherwise the next unused one.
        focus = [s for s in sentences if s in prompt.rsplit(">>>", 1)[-1]]
        sentence = focus[0] if focus else sentences[used % len(sentences)]
        if language(passage) == "zh":
            question, answer = f"“{sentence[:8]}”这条规定是什么？", sentence
        else:
            question, answer = f"What does the handbook say about {' '.join(sentence.split()[:5])}?", sentence
        return json.dumps({"question": question, "answer": answer}, ensure_ascii=False)

    def _paraphrase(self, prompt: str) -> str:
        question = re.split(r"Question: |问题：", prompt)[-1].strip()
        self.paraphrase_calls += 1
        if self.bad_first and self.paraphrase_calls == 1:
            return question
        number = self.asked.get(question, 0)
        self.asked[question] = number + 1
        if language(question) == "zh":
            return REPHRASINGS_ZH[number % 3].format(question.split("”")[0].lstrip("“"))
        return REPHRASINGS_EN[number % 3].format(question.split(" about ", 1)[1].rstrip("?"))


def synth(
    kb: KnowledgeBase,
    teacher: FakeBackend,
    n: int,
    paraphrase: int = 0,
    seed: int = 0,
    suites: tuple[Path, ...] = (),
) -> SynthReport[GenerationReport]:
    """``synthesize`` as ``ladder finetune synthesize`` runs it: the suite generator writes ``n``
    single-hop pairs; only ``suites`` (not the project's) are checked for leakage."""
    generation = GenerateConfig(n=n, seed=seed, multi_hop_share=0.0)
    return synthesize(
        kb,
        teacher,
        SynthConfig(paraphrase=paraphrase, seed=seed, suites=suites, project_suites=False),
        generate=lambda progress: generate_items(kb, teacher, generation, progress, id_prefix="synth"),
        suites=SuiteFiles(),
    )


@pytest.fixture(scope="module")
def kb_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("synth_home")
    docs = tmp_path_factory.mktemp("synth_docs")
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = load_settings(
        {"home": str(home), "chunk_size": 400, "chunk_overlap": 0, "threads": 1, "allowed_roots": str(docs)}
    )
    with KnowledgeBase.create("handbook", settings) as kb:
        kb.add([docs])
    return home


@pytest.fixture
def handbook(kb_home: Path) -> Iterator[KnowledgeBase]:
    with KnowledgeBase.open("handbook", load_settings({"home": str(kb_home), "threads": 1})) as kb:
        yield kb


def test_check_paraphrase_reasons() -> None:
    original = "Within how many days of delivery can a customer return a product bought in Hangzhou?"
    ok = "How many days after delivery does a customer have to return a product bought in Hangzhou?"
    assert check_paraphrase(original, f"Paraphrase: {ok}\nHope this helps", "en", []) == ok
    assert check_paraphrase(original, original.upper(), "en", []) == "!identical"
    assert check_paraphrase(original, ok, "en", [ok]) == "!duplicate"
    assert check_paraphrase(original, "", "en", []) == "!empty"
    assert (
        check_paraphrase(original, "Tell me the return window for Hangzhou.", "en", []) == "!not_a_question"
    )
    assert check_paraphrase(original, "顾客在杭州买的商品几天内可以退货？", "en", []) == "!wrong_language"
    assert check_paraphrase(original, "How long does a customer have to return a product?", "en", []) == (
        "!lost_entities"  # Hangzhou is gone
    )
    assert check_paraphrase(original, original.replace("Within", "In") + "", "en", []) == "!too_similar"
    assert (
        check_paraphrase("年假有十天吗？", "请问员工的年假是不是十天呢？", "zh", [])
        == "请问员工的年假是不是十天呢？"
    )
    assert check_paraphrase("入职满5年有几天年假？", "入职满五年有几天年假？", "zh", []) == "!lost_entities"


def test_synthesize_writes_tagged_grounded_pairs_and_paraphrases(
    handbook: KnowledgeBase, tmp_path: Path
) -> None:
    teacher = FakeBackend(default=Teacher(bad_first_paraphrase=True), model_id="teacher")
    report = synth(handbook, teacher, n=4, paraphrase=2, seed=1)
    generation = report.generation
    assert len(generation.items) == 4
    assert report.paraphrase_rejected == {"identical": 1}  # retried once, then accepted
    assert report.paraphrases == 8 and report.paraphrase_calls == 9
    assert len(report.rows) == 12 and not report.leaks
    originals = [r for r in report.rows if "paraphrase" not in r["tags"]]
    paraphrases = [r for r in report.rows if "paraphrase" in r["tags"]]
    assert len(originals) == 4 and len(paraphrases) == 8
    for row in originals:
        assert row["tags"][0] == "synthetic" and row["tags"][1] == "single_hop"
        assert row["source"].startswith("kb:handbook:") and "#" in row["source"]
        chunk_text = " ".join(DOCUMENTS.values())
        assert row["output"] in chunk_text  # the answer is a sentence of the knowledge base
    by_answer = {r["output"]: r for r in originals}
    for row in paraphrases:
        original = by_answer[row["output"]]
        assert row["tags"][:2] == ["synthetic", "paraphrase"]
        assert row["source"].startswith(original["source"] + "~p")
        assert row["instruction"] != original["instruction"]

    out = tmp_path / "synthetic.jsonl"
    write_rows(report.rows, out)
    examples = load_file(out)  # what `ladder finetune prepare --domain` reads
    assert len(examples) == 12 and all(e.tags[0] == "synthetic" for e in examples)
    # prepare's dedup keeps paraphrases: they are compared by their question, not their shared answer.
    assert len(Deduplicator().run(examples).kept) == 12


def test_synthesize_drops_pairs_that_leak_into_a_suite(handbook: KnowledgeBase, tmp_path: Path) -> None:
    first = synth(handbook, FakeBackend(default=Teacher()), n=3, seed=2)
    leaked = first.rows[1]["instruction"]
    (tmp_path / "held.jsonl").write_text(
        json.dumps({"id": "h-7", "user_input": leaked, "reference": "x"}) + "\n"
    )
    (tmp_path / "held.yaml").write_text("name: held\nkind: qa\ndata: held.jsonl\n", encoding="utf-8")
    second = synth(handbook, FakeBackend(default=Teacher()), n=3, seed=2, suites=(tmp_path / "held.yaml",))
    assert [r["instruction"] for r in second.rows] == [
        r["instruction"] for r in first.rows if r["instruction"] != leaked
    ]
    assert second.leaks == [
        {
            "source": first.rows[1]["source"],
            "suite": "held",
            "item": "h-7",
            "match": "exact",
            "similarity": 1.0,
        }
    ]


def test_paraphrase_prompts_match_the_question_language(handbook: KnowledgeBase) -> None:
    teacher = FakeBackend(default=Teacher())
    report = synth(handbook, teacher, n=6, paraphrase=1)
    asks = [
        conversation
        for conversation, _ in teacher.calls
        if "rephrase" in conversation[0].content or "改写" in conversation[0].content
    ]
    assert len(asks) == 6
    for conversation in asks:
        question = re.split(r"Question: |问题：", conversation[-1].content)[-1]
        assert language(conversation[-1].content) == language(question)
    zh_rows = [r for r in report.rows if "lang:zh" in r["tags"]]
    assert zh_rows and all(language(r["instruction"]) == "zh" for r in zh_rows)


def test_dedup_compares_paraphrases_by_question() -> None:
    # A long answer makes two examples that share it near-duplicates as whole texts.
    answer = (
        DOCUMENTS["refunds.md"]
        + DOCUMENTS["offices.md"]
        + (
            "Parking is free for visitors for the first two hours, after which the garage charges hourly. "
            "The Shenzhen office has a lab for testing hardware prototypes, booked through facilities. "
            "Returns of damaged goods need a photo of the damage sent to the support team within a week."
        )
    )
    original = Example(
        [{"role": "user", "content": "What is the return window?"}, {"role": "assistant", "content": answer}],
        source="a",
        tags=["synthetic"],
    )
    rephrased = Example(
        [
            {"role": "user", "content": "How long do customers have to send products back?"},
            {"role": "assistant", "content": answer},
        ],
        source="b",
        tags=["synthetic", "paraphrase"],
    )
    copy = Example(
        [
            {"role": "user", "content": "What is the return window ?"},
            {"role": "assistant", "content": answer},
        ],
        source="c",
        tags=["synthetic", "paraphrase"],
    )
    result = Deduplicator().run([original, rephrased, copy])
    assert [e.source for e in result.kept] == ["a", "b"]
    assert result.exact == [{"dropped": "c", "kept": "a"}]
    untagged = Example(rephrased.messages, source="d")
    assert jaccard(shingles(original.full_text), shingles(untagged.full_text)) >= 0.85
    assert [e.source for e in Deduplicator().run([original, untagged]).kept] == ["a"]


def test_cli_synthesize(
    kb_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import assistant.service

    teacher = FakeBackend(default=Teacher(), model_id="fake-teacher")

    def fake_backend(model: str | None, settings: Settings) -> FakeBackend:
        assert model == "big-teacher"
        return teacher

    monkeypatch.setattr(assistant.service, "get_backend", fake_backend)
    out = tmp_path / "syn.jsonl"
    args = [
        "finetune",
        "synthesize",
        "--kb",
        "handbook",
        "--teacher",
        "big-teacher",
        "--n",
        "3",
        "--paraphrase",
        "1",
        "--multi-hop",
        "0",
        "--out",
        str(out),
        "--home",
        str(kb_home),
    ]
    code, stdout, err = run(args, capsys)
    assert code == 0, err
    assert "wrote 6 examples" in stdout and "3 pairs + 3 paraphrases from fake-teacher" in stdout, (
        stdout + err
    )
    assert len(out.read_text(encoding="utf-8").splitlines()) == 6
    code, _, err = run(args, capsys)
    assert code == 2 and "already exists" in err
    code, _, err = run(
        [*args[:-4], "--out", str(tmp_path / "x.jsonl"), "--kb", "nope", "--home", str(kb_home)], capsys
    )
    assert code != 0 and "nope" in err
    assert not (tmp_path / "x.jsonl").exists()
    code, _, err = run(
        [*args[:-4], "--paraphrase", "-1", "--out", str(tmp_path / "y.jsonl"), "--home", str(kb_home)], capsys
    )
    assert code == 2 and "--paraphrase must be >= 0" in err
