"""``ladder eval`` on the sample suites with the real test pack: the exam in logprob mode and
the QA suite with prompt and RAG over the demo knowledge base. Marked slow; runs in CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import run, wide_terminal  # noqa: F401  (autouse fixture)
from tests.conftest import TEST_PACK

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "datasets" / "suites"


@pytest.fixture
def home_with_pack(isolated_home: Path, real_pack_dir: Path) -> Path:
    (isolated_home / "models").mkdir(parents=True)
    (isolated_home / "models" / TEST_PACK).symlink_to(real_pack_dir)
    return isolated_home


def test_exam_in_logprob_mode_then_from_the_cache(
    capsys: pytest.CaptureFixture[str], home_with_pack: Path
) -> None:
    args = [
        "eval",
        str(SUITES / "demo_exam.yaml"),
        "--model",
        TEST_PACK,
        "--limit",
        "6",
        "--report",
        "exam.json",
    ]
    code, out, err = run([*args, "--fail-under", "accuracy=0"], capsys)
    assert code == 0, err
    data = json.loads(Path("exam.json").read_text(encoding="utf-8"))
    assert data["mode"] == "logprob" and data["model_calls"] == 6
    for record in data["records"]:
        scores = record["choice_scores"]
        assert len(scores) == 4 and all(s < 0 for s in scores)  # log-probabilities of A..D
        assert record["scores"]["accuracy"]["detail"]["predicted"] in "ABCD"
    accuracy = data["strategies"][0]["metrics"]["accuracy"]
    assert accuracy["n"] == 6 and 0 <= accuracy["mean"] <= 1
    code, out, _ = run(args, capsys)
    assert "0 model calls" in out and "6 from cache" in out


def test_qa_with_prompt_and_rag(
    capsys: pytest.CaptureFixture[str], home_with_pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LADDER_ALLOWED_ROOTS", str(ROOT / "datasets"))
    code, _, err = run(["kb", "create", "demo"], capsys)
    assert code == 0, err
    code, _, err = run(["kb", "add", "demo", str(ROOT / "datasets" / "kb" / "demo")], capsys)
    assert code == 0, err
    # Short answers keep the test quick: the point is the plumbing, not the prose.
    Path("prompt.yaml").write_text("strategy: prompt\nmax_new_tokens: 32\n", encoding="utf-8")
    Path("rag.yaml").write_text("strategy: rag\nmax_new_tokens: 32\n", encoding="utf-8")
    args = ["eval", str(SUITES / "demo_qa.yaml"), "-s", "prompt.yaml", "-s", "rag.yaml", "--kb", "demo",
            "--model", TEST_PACK, "--limit", "4", "--no-judge", "--report", "qa.json",
            "--fail-under", "token_f1=0"]  # fmt: skip
    code, out, err = run(args, capsys)
    assert code == 0, err
    data = json.loads(Path("qa.json").read_text(encoding="utf-8"))
    by_strategy = {s["strategy"]: s for s in data["strategies"]}
    rag_records = [r for r in data["records"] if r["strategy"] == "rag"]
    assert all(r["retrieved_contexts"] for r in rag_records)
    assert by_strategy["rag"]["metrics"]["hit@3"]["n"] == 4  # retrieval scored for RAG
    assert by_strategy["prompt"]["metrics"]["hit@3"]["n"] == 0  # and not applicable without it
    assert all(r["response"] for r in data["records"])
    assert "rag - prompt on token_f1" in out
