"""Suite specs and loaders: the shipped demo suites, every layout, and every bad input with file:line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evaluation.suites.errors import SuiteError
from evaluation.suites.exam import ExamRow, ceval_prompt
from evaluation.suites.readers import load_mcq_jsonl, load_qa
from evaluation.suites.spec import load_suite, load_suite_spec
from evaluation.suites.subjects import CATEGORIES, CEVAL_SUBJECTS, register_subject, subject_zh

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "datasets" / "suites"
KB = ROOT / "datasets" / "kb" / "demo"

CEVAL_HEADER = "id,question,A,B,C,D,answer"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def qa_suite(tmp_path: Path, extra: str = "", data: str = "qa.jsonl") -> Path:
    return write(tmp_path / "suite.yaml", f"name: t\nkind: qa\ndata: {data}\n{extra}")


def raises_at(where: str, *fragments: str) -> pytest.RaisesContext[SuiteError]:
    """Expect a SuiteError whose message starts with ``where`` (file:line[:col]) and has the fragments."""
    pattern = "^" + re.escape(where + ":") + "".join(f"(?s:.*){re.escape(f)}" for f in fragments)
    return pytest.raises(SuiteError, match=pattern)


# ---- shipped demo suites ---------------------------------------------------------------------
def test_demo_qa_loads_and_its_reference_contexts_are_quotes_from_the_kb() -> None:
    suite = load_suite(SUITES / "demo_qa.yaml")
    assert len(suite) >= 12
    assert [m.label for m in suite.metrics] == ["exact_match", "token_f1", "rouge_l", "hit@3", "mrr"]
    assert suite.spec.thresholds == {"token_f1": 0.5, "hit@3": 0.8}
    kb_text = "\n".join(p.read_text(encoding="utf-8") for p in KB.iterdir())
    languages = set()
    for item in suite.items:
        assert item.question.reference and item.question.reference_contexts
        for context in item.question.reference_contexts:
            assert context in kb_text, context
        languages.update(t for t in item.question.tags if t in ("en", "zh"))
        assert item.prompt == item.question.user_input  # default template "{question}"
    assert languages == {"en", "zh"}
    assert not (ROOT / "datasets" / "__init__.py").exists()


def test_demo_exam_is_a_five_shot_ceval_suite() -> None:
    suite = load_suite(SUITES / "demo_exam.yaml")
    subjects = {i.subject for i in suite.items}
    assert len(subjects) == 3 and len(suite) == 24
    assert {i.category for i in suite.items} == {"STEM", "Social Science", "Humanities"}
    assert subject_zh("demo_history") == "初中历史"  # declared by the suite's subject_info
    for item in suite.items:
        assert item.reference_letter == item.question.reference
        assert item.reference_letter in "ABCD" and len(item.question.choices or []) == 4
        assert item.prompt.startswith(f"以下是中国关于{subject_zh(item.subject or '')}考试的单项选择题")
        assert len(re.findall(r"\n答案：[ABCD]\n\n", item.prompt)) == 5
        assert item.prompt.endswith("\nD. " + (item.question.choices or [""])[3] + "\n答案：")
        assert f"subject:{item.subject}" in item.question.tags
    assert len({i.question.id for i in suite.items}) == len(suite)


def test_ceval_subject_map_covers_52_subjects_in_4_categories() -> None:
    assert len(CEVAL_SUBJECTS) == 52
    counts = {c: sum(1 for _, cat in CEVAL_SUBJECTS.values() if cat == c) for c in CATEGORIES}
    assert counts == {"STEM": 20, "Social Science": 10, "Humanities": 11, "Other": 11}
    assert CEVAL_SUBJECTS["law"] == ("法学", "Humanities")


def test_ceval_prompt_format_exactly() -> None:
    shot = ExamRow("0", "1+1=____。", ["1", "2", "3", "4"], "B", "1 加 1 等于 2。", 2, Path("x.csv"), "logic")
    row = ExamRow("0", "2+2=____。", ["4", "5", "6", "7"], "A", None, 2, Path("y.csv"), "logic")
    assert ceval_prompt("logic", row, [shot]) == (
        "以下是中国关于逻辑学考试的单项选择题，请选出其中的正确答案。\n\n"
        "1+1=____。\nA. 1\nB. 2\nC. 3\nD. 4\n答案：B\n\n"
        "2+2=____。\nA. 4\nB. 5\nC. 6\nD. 7\n答案："
    )
    cot = ceval_prompt("logic", row, [shot], chain_of_thought=True)
    assert "答案：让我们一步一步思考，\n1 加 1 等于 2。\n所以答案是B。\n\n" in cot
    assert cot.endswith("答案：让我们一步一步思考，\n")


# ---- layouts -------------------------------------------------------------------------------------
def ceval_tree(
    root: Path, split: str = "val", header: str = CEVAL_HEADER, rows: str = "0,q,a,b,c,d,A\n"
) -> Path:
    write(root / "dev" / "logic_dev.csv", f"{CEVAL_HEADER},explanation\n0,dq,a,b,c,d,C,because\n")
    return write(root / split / f"logic_{split}.csv", f"{header}\n{rows}")


def test_ceval_test_split_without_answers_means_predictions_only(tmp_path: Path) -> None:
    ceval_tree(
        tmp_path / "exam", split="test", header="id,question,A,B,C,D", rows="0,q,a,b,c,d\n1,r,a,b,c,d\n"
    )
    suite = load_suite(write(tmp_path / "s.yaml", "name: e\nkind: mcq\ndata: exam\nsplit: test\nk_shot: 1\n"))
    assert suite.spec.format == "ceval"  # inferred from a folder
    assert [i.reference_letter for i in suite.items] == [None, None]
    assert not suite.has_references
    assert suite.items[0].prompt.count("答案：C") == 1 and suite.items[0].question.id == "logic/test/0"


def test_qa_csv_with_json_lists_and_tags(tmp_path: Path) -> None:
    path = write(
        tmp_path / "qa.csv",
        'id,user_input,reference,reference_contexts,tags\nq1,Hi?,Hello,"[""ctx one"", ""ctx two""]",a;b\n'
        "q2,你好？,您好,单个上下文,\n",
    )
    items = load_qa(path)
    assert items[0].question.reference_contexts == ["ctx one", "ctx two"]
    assert items[0].question.tags == ["a", "b"]
    assert items[1].question.reference_contexts == ["单个上下文"] and items[1].question.tags == []
    assert items[1].source == f"{path}:3"


def test_mcq_jsonl_letters_indices_and_any_option_count(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "m.jsonl",
        [
            {"question": "q1", "options": ["x", "y"], "label": "b"},
            {"question": "q2", "options": ["1", "2", "3", "4", "5"], "label": 4, "subject": "law"},
            {"question": "q3", "options": ["x", "y", "z"]},
        ],
    )
    items = load_mcq_jsonl(path)
    assert [i.reference_letter for i in items] == ["B", "E", None]
    assert items[1].category == "Humanities" and "category:Humanities" in items[1].question.tags
    assert items[0].question.id == "m-1"


def test_mcq_jsonl_suite_k_shot_from_dev_with_template(tmp_path: Path) -> None:
    jsonl(tmp_path / "m.jsonl", [{"id": "t1", "question": "2+2?", "options": ["3", "4"], "label": 1}])
    jsonl(tmp_path / "dev.jsonl", [{"question": "1+1?", "options": ["2", "3"], "label": "A"}])
    spec = "name: m\nkind: mcq\ndata: m.jsonl\ndev: dev.jsonl\nk_shot: 1\n"
    spec += 'prompt: "Q: {question}\\n{options}\\nA:"\n'
    suite = load_suite(write(tmp_path / "s.yaml", spec))
    assert suite.spec.format == "mcq_jsonl"
    assert suite.items[0].prompt == "Q: 1+1?\nA. 2\nB. 3\nA: A\n\nQ: 2+2?\nA. 3\nB. 4\nA:"


def test_mmlu_and_cmmlu_layouts(tmp_path: Path) -> None:
    write(tmp_path / "mmlu" / "dev" / "astronomy_dev.csv", "Shot?,a,b,c,d,D\n")
    write(
        tmp_path / "mmlu" / "test" / "astronomy_test.csv",
        '"What, exactly?",a,b,c,d,B\n"Two\nlines",a,b,c,d,C\n',
    )
    mmlu = load_suite(
        write(tmp_path / "m.yaml", "name: m\nkind: mcq\nformat: mmlu\ndata: mmlu\nsplit: test\nk_shot: 1\n")
    )
    assert [i.reference_letter for i in mmlu.items] == ["B", "C"]
    assert (
        mmlu.items[1].source.endswith("astronomy_test.csv:2")
        and mmlu.items[1].question.user_input == "Two\nlines"
    )
    assert mmlu.items[0].prompt.startswith(
        "The following are multiple choice questions (with answers) about astronomy."
    )
    assert "Shot?\nA. a\nB. b\nC. c\nD. d\nAnswer: D\n\n" in mmlu.items[0].prompt
    write(tmp_path / "cm" / "test" / "law.csv", ",Question,A,B,C,D,Answer\n0,问？,甲,乙,丙,丁,C\n")
    cmmlu = load_suite(
        write(tmp_path / "c.yaml", "name: c\nkind: mcq\nformat: cmmlu\ndata: cm\nsplit: test\n")
    )
    item = cmmlu.items[0]
    assert (item.reference_letter, item.question.id, item.category) == ("C", "law/test/0", "Humanities")
    header = "以下是关于法学的单项选择题，请直接给出正确答案的选项。\n\n"
    assert item.prompt == header + "题目：问？\nA. 甲\nB. 乙\nC. 丙\nD. 丁\n答案是："


# ---- bad data files: file:line[:column] ------------------------------------------------------------
def test_jsonl_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "qa.jsonl", '{"user_input": "a", "reference": "b"}\n\n{"user_input": "c",, }\n')
    with raises_at(f"{path}:3:20", "invalid JSON"):
        load_qa(path)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "qa.jsonl", '["a list"]\n')
    with raises_at(f"{path}:1", "expected a JSON object"):
        load_qa(path)


def test_qa_missing_user_input(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "qa.jsonl", [{"user_input": "a"}, {"reference": "b"}])
    with raises_at(f"{path}:2", "column 'user_input'", "missing or empty", "hint:"):
        load_qa(path)


def test_qa_reference_contexts_must_be_a_list_of_strings(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "qa.jsonl", [{"user_input": "a", "reference_contexts": "not a list"}])
    with raises_at(f"{path}:1", "column 'reference_contexts'", "list of strings"):
        load_qa(path)


def test_csv_wrong_field_count_reports_the_record_start_line(tmp_path: Path) -> None:
    # Record 1 spans lines 2-3 (a quoted newline), so the bad record starts on line 4.
    path = write(tmp_path / "qa.csv", 'user_input,reference\n"multi\nline",r\nq,r,extra\n')
    with raises_at(f"{path}:4", "expected 2 fields", "got 3"):
        load_qa(path)


def test_csv_malformed_quote(tmp_path: Path) -> None:
    path = write(tmp_path / "qa.csv", 'user_input,reference\nq,r\nq,"r"x\n')
    with raises_at(f"{path}:3", "malformed CSV", "hint: quote"):
        load_qa(path)


def test_duplicate_ids_within_and_across_files(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "qa.jsonl", [{"id": "x", "user_input": "a"}, {"id": "y", "user_input": "b"},
                                         {"id": "x", "user_input": "c"}])  # fmt: skip
    with raises_at(f"{path}:3", "duplicate id 'x'", f"first at {path}:1"):
        load_qa(path)
    jsonl(tmp_path / "a.jsonl", [{"id": "z", "user_input": "a"}])
    other = jsonl(tmp_path / "b.jsonl", [{"id": "z", "user_input": "b"}])
    with raises_at(f"{other}:1", "duplicate id 'z'"):
        load_suite(qa_suite(tmp_path, data="[a.jsonl, b.jsonl]"))


def test_ceval_answer_not_among_options(tmp_path: Path) -> None:
    path = ceval_tree(tmp_path / "exam", rows="0,q,a,b,c,d,A\n1,q,a,b,c,d,E\n")
    with raises_at(f"{path}:3", "column 'answer'", "'E' is not one of A, B, C, D"):
        load_suite(write(tmp_path / "s.yaml", "name: e\nkind: mcq\ndata: exam\n"))


def test_ceval_missing_column_and_duplicate_id(tmp_path: Path) -> None:
    path = ceval_tree(tmp_path / "exam", header="id,A,B,C,D,answer", rows="0,a,b,c,d,A\n")
    suite_yaml = write(tmp_path / "s.yaml", "name: e\nkind: mcq\ndata: exam\n")
    with raises_at(f"{path}:1", "missing column(s): question", "hint: a ceval file starts with the header"):
        load_suite(suite_yaml)
    ceval_tree(tmp_path / "exam", rows="0,q,a,b,c,d,A\n0,q,a,b,c,d,B\n")
    with raises_at(f"{path}:3", "duplicate id '0'"):
        load_suite(suite_yaml)


def test_mcq_label_out_of_range(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "m.jsonl", [{"question": "q", "options": ["a", "b", "c"], "label": "D"}])
    with raises_at(f"{path}:1", "column 'label'", "'D' is not one of the options", "A-C or an index 0-2"):
        load_mcq_jsonl(path)
    path = jsonl(tmp_path / "n.jsonl", [{"question": "q", "options": ["a", "b"], "label": 0},
                                        {"question": "q", "options": ["a", "b"], "label": 2}])  # fmt: skip
    with raises_at(f"{path}:2", "column 'label'"):
        load_mcq_jsonl(path)
    path = jsonl(tmp_path / "o.jsonl", [{"question": "q", "options": ["only one"], "label": 0}])
    with raises_at(f"{path}:1", "column 'options'", "at least 2"):
        load_mcq_jsonl(path)


def test_mmlu_row_with_wrong_field_count(tmp_path: Path) -> None:
    path = write(tmp_path / "mmlu" / "test" / "x_test.csv", "q,a,b,c,d,A\nq,a,b,c,A\n")
    with raises_at(f"{path}:2", "expected 6 fields", "no header"):
        load_suite(write(tmp_path / "m.yaml", "name: m\nkind: mcq\nformat: mmlu\ndata: mmlu\nsplit: test\n"))


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_bytes(b'{"user_input": "a"}\n{"user_input": "\xff"}\n')
    with raises_at(f"{path}:2", "not valid UTF-8"):
        load_qa(path)
    with raises_at(f"{tmp_path / 'nope.jsonl'}", "file not found", "relative to its YAML"):
        load_suite(qa_suite(tmp_path, data="nope.jsonl"))


# ---- bad suite specs: the YAML file and line ---------------------------------------------------
def test_empty_suite(tmp_path: Path) -> None:
    write(tmp_path / "qa.jsonl", "\n")
    suite_yaml = qa_suite(tmp_path, extra="# no items\n")
    with raises_at(f"{suite_yaml}:3", "the suite has no items"):
        load_suite(suite_yaml)


@pytest.mark.parametrize(
    ("extra", "line", "fragment"),
    [
        ("metrics:\n  - token_f1\n  - bogus\n", 6, "unknown metric 'bogus'"),
        ("metrics:\n  - accuracy\n", 5, "'accuracy' does not apply to qa suites"),
        ("metrics:\n  - hit_at_k: {k: 0}\n", 5, "k must be a positive integer"),
        ("metrics:\n  - token_f1\n  - token_f1\n", 6, "listed twice"),
        ("metrics: [token_f1]\nthresholds:\n  accuracy: 0.8\n", 6, "not among the suite's metrics"),
        ("metrics: [token_f1]\nthresholds:\n  token_f1: 80\n", 6, "outside 0..1"),
        ("colour: blue\n", 4, "unknown key 'colour'"),
        ("prompt: 'no placeholder'\n", 4, "must contain {question}"),
        ("k_shot: 2\n", 4, "k_shot needs `dev`"),
        ("format: ceval\n", 4, "does not fit kind 'qa'"),
    ],
)
def test_bad_spec_names_the_yaml_line(tmp_path: Path, extra: str, line: int, fragment: str) -> None:
    jsonl(tmp_path / "qa.jsonl", [{"user_input": "a", "reference": "b"}])
    suite_yaml = qa_suite(tmp_path, extra=extra)
    with raises_at(f"{suite_yaml}:{line}", fragment):
        load_suite_spec(suite_yaml)


def test_invalid_yaml_and_bad_kind(tmp_path: Path) -> None:
    broken = write(tmp_path / "b.yaml", "name: t\nkind: qa\ndata: [unclosed\n")
    with pytest.raises(SuiteError, match=re.escape(str(broken)) + r":4:\d+: invalid YAML"):
        load_suite_spec(broken)
    bad_kind = write(tmp_path / "k.yaml", "name: t\nkind: essay\ndata: x.jsonl\n")
    with raises_at(f"{bad_kind}:2", "kind must be one of qa, mcq"):
        load_suite_spec(bad_kind)


def test_exam_k_shot_beyond_dev_and_unknown_subject(tmp_path: Path) -> None:
    ceval_tree(tmp_path / "exam")
    too_many = write(tmp_path / "s.yaml", "name: e\nkind: mcq\ndata: exam\nk_shot: 3\n")
    with pytest.raises(SuiteError, match=r"logic_dev\.csv: k_shot is 3 but the dev file has 1 exemplars"):
        load_suite(too_many)
    unknown = write(tmp_path / "u.yaml", "name: e\nkind: mcq\ndata: exam\nsubjects: [law]\n")
    with raises_at(f"{unknown}:4", "no val file for subject 'law'", "found: logic"):
        load_suite(unknown)


def test_custom_subjects_cannot_redefine_known_ones(tmp_path: Path) -> None:
    register_subject("team_exam", "内部考试", "Other")
    register_subject("team_exam", "内部考试", "Other")  # the same again is fine
    with pytest.raises(SuiteError, match="already defined"):
        register_subject("law", "法律", "STEM")
    with pytest.raises(SuiteError, match="category must be one of"):
        register_subject("x_exam", "考试", "Sports")
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nkind: mcq\nformat: ceval\ndata: .\nsubject_info:\n  a: {name_zh: 甲}\n")
    with pytest.raises(SuiteError, match="needs name_zh and category"):
        load_suite_spec(spec)
