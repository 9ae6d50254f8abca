"""The feedback store and its promotions: record, list, show, dismiss, promote to a suite (that
``ladder eval`` loads), to SFT data (that training reads), to preference pairs, and the rule
that one question never feeds both a training set and a test suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.feedback import (
    FeedbackError,
    FeedbackNotFound,
    LeakageRefused,
    dismiss,
    export_feedback,
    get_feedback,
    list_feedback,
    promote,
    question_hash,
    record_feedback,
)
from assistant.settings import Settings, load_settings
from assistant.types import Citation
from evaluation.suites.source import SuiteFiles

SUITES = SuiteFiles()  # how promotion reads an existing suite's YAML


@pytest.fixture
def settings(isolated_home: Path) -> Settings:
    return load_settings()


def _down(settings: Settings, question: str = "How long is the return window?", **extra: object) -> int:
    values: dict[str, object] = {
        "answer": "7 days.",
        "rating": "down",
        "correction": "30 days from delivery.",
        "model": "fake",
        "strategy": "rag",
        "contexts": ["Returns are accepted within 30 days of delivery."],
        "citations": [Citation(1, "policy.md", None, 0, "Returns are accepted within 30 days.", 0.8)],
        "session_id": "s1",
        "source": "chat",
    }
    values.update(extra)
    return record_feedback(settings, question=question, **values).id  # type: ignore[arg-type]


def test_record_and_read_back_every_field(settings: Settings) -> None:
    fid = _down(settings, comment="wrong number")
    item = get_feedback(settings, fid)
    assert (item.question, item.answer, item.rating) == ("How long is the return window?", "7 days.", "down")
    assert item.correction == "30 days from delivery." and item.comment == "wrong number"
    assert (item.model, item.strategy, item.session_id, item.source) == ("fake", "rag", "s1", "chat")
    assert item.contexts == ["Returns are accepted within 30 days of delivery."]
    assert item.citations[0]["source"] == "policy.md" and item.citations[0]["number"] == 1
    assert item.status == "new" and item.promotions == [] and item.created.endswith("+00:00")
    assert settings.db_path.is_file()


def test_list_filters_newest_first_and_bad_input_is_refused(settings: Settings) -> None:
    first = _down(settings)
    second = record_feedback(settings, question="Hi?", answer="Hello", rating=1).id
    assert [i.id for i in list_feedback(settings)] == [second, first]
    assert [i.id for i in list_feedback(settings, rating="up")] == [second]
    assert [i.id for i in list_feedback(settings, rating="down")] == [first]
    assert list_feedback(settings, status="dismissed") == []
    with pytest.raises(FeedbackError, match="rating"):
        record_feedback(settings, question="q", answer="a", rating="meh")
    with pytest.raises(FeedbackError, match="question"):
        record_feedback(settings, question="  ", answer="a", rating="up")
    with pytest.raises(FeedbackError, match="characters"):
        record_feedback(settings, question="q", answer="a" * 20_001, rating="up")
    with pytest.raises(FeedbackError, match="status"):
        list_feedback(settings, status="open")
    with pytest.raises(FeedbackNotFound):
        get_feedback(settings, 999)


def test_question_hash_ignores_case_width_space_and_punctuation() -> None:
    assert question_hash("How long is the return window?") == question_hash(
        "  how LONG is the return window "
    )
    assert question_hash("退货期限是多久？") == question_hash("退货期限是多久?")
    assert question_hash("Ｒｅｔｕｒｎｓ") == question_hash("returns")
    assert question_hash("returns") != question_hash("refunds")


def test_promote_to_a_new_suite_that_ladder_eval_loads(settings: Settings, tmp_path: Path) -> None:
    from evaluation.suites.spec import load_suite

    fid = _down(settings)
    up = record_feedback(
        settings, question="Do you ship abroad?", answer="Yes, to 12 countries.", rating="up"
    )
    suite_yaml = tmp_path / "suites" / "from_users.yaml"
    (promotion,) = promote(settings, fid, "suite", path=suite_yaml, suites=SUITES)
    assert promotion.target == "suite" and promotion.side == "test" and promotion.path == str(suite_yaml)
    promote(settings, up.id, "suite", path=suite_yaml, suites=SUITES)
    suite = load_suite(suite_yaml)
    assert suite.spec.kind == "qa" and suite.spec.name == "from_users"
    by_id = {item.question.id: item.question for item in suite.items}
    assert by_id[f"feedback-{fid}"].reference == "30 days from delivery."  # the correction
    assert by_id[f"feedback-{up.id}"].reference == "Yes, to 12 countries."  # a thumbs-up's answer
    assert get_feedback(settings, fid).status == "promoted"


def test_promote_extends_an_existing_suite(settings: Settings, tmp_path: Path) -> None:
    from evaluation.suites.spec import load_suite

    (tmp_path / "s.jsonl").write_text(json.dumps({"id": "a1", "user_input": "Q?", "reference": "A"}) + "\n")
    (tmp_path / "s.yaml").write_text("name: s\nkind: qa\ndata: s.jsonl\n")
    fid = _down(settings)
    promote(settings, fid, "suite", path=tmp_path / "s.yaml", suites=SUITES)
    assert [item.question.id for item in load_suite(tmp_path / "s.yaml").items] == ["a1", f"feedback-{fid}"]


def test_promote_to_sft_gives_data_the_trainer_reads(settings: Settings) -> None:
    from finetune.data.load import load_file
    from finetune.train.data import read_records

    fid = _down(settings)
    (promotion,) = promote(settings, fid, "sft", suites=SUITES)
    path = Path(promotion.path)
    assert path == settings.home / "feedback" / "feedback_sft.jsonl"
    (record,) = read_records(path)
    assert record.messages[-1] == {"role": "assistant", "content": "30 days from delivery."}
    (example,) = load_file(path)
    assert example.prompt == "How long is the return window?" and example.tags == ["feedback"]


def test_thumbs_down_with_correction_becomes_sft_example_and_preference_pair(settings: Settings) -> None:
    fid = _down(settings)
    promotions = promote(settings, fid, "train", suites=SUITES)
    assert [p.target for p in promotions] == ["sft", "pairs"]
    pair = json.loads(Path(promotions[1].path).read_text(encoding="utf-8"))
    assert pair["prompt"] == [{"role": "user", "content": "How long is the return window?"}]
    assert pair["chosen"] == [{"role": "assistant", "content": "30 days from delivery."}]
    assert pair["rejected"] == [{"role": "assistant", "content": "7 days."}]
    assert pair["source"] == f"feedback:{fid}"
    assert {p.target for p in get_feedback(settings, fid).promotions} == {"sft", "pairs"}


def test_thumbs_up_trains_sft_only_and_a_bare_thumbs_down_has_nothing_to_teach(settings: Settings) -> None:
    up = record_feedback(settings, question="Q1?", answer="Good answer", rating="up")
    assert [p.target for p in promote(settings, up.id, "train", suites=SUITES)] == ["sft"]
    bare = record_feedback(settings, question="Q2?", answer="Bad answer", rating="down")
    with pytest.raises(FeedbackError, match="without a correction"):
        promote(settings, bare.id, "sft", suites=SUITES)
    with pytest.raises(FeedbackError, match="not a thumbs-down with a correction"):
        promote(settings, up.id, "pairs", suites=SUITES)
    # A reviewer may supply the right answer.
    (promotion,) = promote(settings, bare.id, "sft", suites=SUITES, reference="The right answer")
    rows = Path(promotion.path).read_text(encoding="utf-8").splitlines()
    assert json.loads(rows[-1])["messages"][-1]["content"] == "The right answer"


def test_one_rating_never_feeds_training_and_the_test_split(settings: Settings, tmp_path: Path) -> None:
    fid = _down(settings)
    promote(settings, fid, "suite", path=tmp_path / "t.yaml", suites=SUITES)
    sft_file = settings.home / "feedback" / "feedback_sft.jsonl"
    with pytest.raises(LeakageRefused, match="already feeds the test side"):
        promote(settings, fid, "sft", suites=SUITES)
    with pytest.raises(LeakageRefused):
        promote(settings, fid, "train", suites=SUITES)
    assert not sft_file.exists(), "a refusal writes nothing"
    assert [p.target for p in get_feedback(settings, fid).promotions] == ["suite"]
    with pytest.raises(FeedbackError, match="already promoted to suite"):
        promote(settings, fid, "suite", path=tmp_path / "t.yaml", suites=SUITES)


def test_the_same_question_rated_twice_cannot_go_to_both_sides(settings: Settings, tmp_path: Path) -> None:
    first = _down(settings)
    second = _down(settings, question="how long is the RETURN window", answer="two weeks")
    promote(settings, first, "sft", suites=SUITES)
    with pytest.raises(LeakageRefused, match=f"feedback {first} was promoted to sft"):
        promote(settings, second, "suite", path=tmp_path / "t.yaml", suites=SUITES)
    assert not (tmp_path / "t.yaml").exists()
    promote(settings, second, "pairs", suites=SUITES)  # the same side is fine


def test_dismiss_and_what_follows(settings: Settings) -> None:
    fid = _down(settings)
    item = dismiss(settings, fid, note="spam")
    assert item.status == "dismissed" and item.note == "spam" and item.reviewed
    with pytest.raises(FeedbackError, match="dismissed"):
        promote(settings, fid, "sft", suites=SUITES)
    other = _down(settings, question="Other?")
    promote(settings, other, "sft", suites=SUITES)
    with pytest.raises(FeedbackError, match="already promoted"):
        dismiss(settings, other)
    with pytest.raises(FeedbackError, match="unknown target"):
        promote(settings, other, "wiki")


def test_export_jsonl_and_csv(settings: Settings, tmp_path: Path) -> None:
    import csv

    fid = _down(settings)
    promote(settings, fid, "sft", suites=SUITES)
    record_feedback(settings, question="Q?", answer="A", rating="up")
    assert export_feedback(settings, tmp_path / "all.jsonl") == 2
    rows = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[1]["id"] == fid and rows[1]["promotions"][0]["target"] == "sft"
    assert export_feedback(settings, tmp_path / "promoted.csv", status="promoted", fmt="csv") == 1
    with (tmp_path / "promoted.csv").open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["question"] == "How long is the return window?" and row["promotions"].startswith("sft:")


def test_feedback_on_an_answer_takes_its_fields_and_counts_by_status(settings: Settings) -> None:
    from assistant.feedback import feedback_counts, feedback_on_answer
    from assistant.types import Answer, Usage

    citation = Citation(1, "policy.md", 2, 0, "30 天内可退货。", 0.9)
    answer = Answer(
        "退货期限是多久？", "7 天 [1]", Usage(3, 2, 1), 0.1, "qwen2.5-coder-0.5b",
        retrieved_contexts=["30 天内可退货。"], citations=[citation],
    )  # fmt: skip
    item = feedback_on_answer(
        settings, answer, False, strategy="rag", correction="30 天", session_id="chat-1"
    )
    assert (item.question, item.answer, item.rating, item.model) == ("退货期限是多久？", "7 天 [1]", "down",
                                                                      "qwen2.5-coder-0.5b")  # fmt: skip
    stored = get_feedback(settings, item.id)
    assert stored.contexts == ["30 天内可退货。"] and stored.citations[0]["page"] == 2
    assert stored.source == "chat" and stored.session_id == "chat-1"
    dismiss(settings, _down(settings))
    assert feedback_counts(settings) == {"new": 1, "dismissed": 1}
