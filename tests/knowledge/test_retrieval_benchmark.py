"""benchmarks/retrieval.py: scoring, the targets of issue 17, the fusion replay behind --tune,
and one small end-to-end run (the project's paraphrase set and a three-passage SQuAD file)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "retrieval.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script(SCRIPT, "retrieval_bench")


def cand(bench: ModuleType, chunk: str, unit: str, gold: bool = False) -> object:
    return bench.Candidate(chunk, unit, gold, None, None)


def test_gold_rank_counts_each_document_once_and_scores_recall_and_mrr(bench: ModuleType) -> None:
    # Chunks of the same document share one place: the gold document is 2nd, not 3rd.
    by_document = [cand(bench, "a1", "a"), cand(bench, "a2", "a"), cand(bench, "b1", "b", gold=True)]
    assert bench.gold_rank(by_document) == 2
    assert bench.gold_rank([cand(bench, "a1", "a")]) is None
    six_deep = [cand(bench, str(i), str(i), gold=i == 6) for i in range(1, 12)]
    r1, r5, mrr = bench.score([[cand(bench, "x", "x", gold=True)], by_document, six_deep, []])
    assert (r1, r5) == (0.25, 0.5)
    assert mrr == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)
    # The replay check compares places as the metrics see them: the search's cut at 50 chunks
    # and a replay's longer list both miss a gold document past the 10th place.
    assert [bench.top10(p) for p in (1, 10, 11, 93, None)] == [1, 10, None, None, None]


def test_project_sets_load_by_split(bench: ModuleType) -> None:
    for name in bench.PROJECT_SETS:
        tune, check = bench.load_project_set(name, "tune"), bench.load_project_set(name, "check")
        assert len(tune) + len(check) == len(bench.load_project_set(name, "all"))
        assert tune and check
        assert {q.gold for q in tune}.isdisjoint({q.gold for q in check})
        assert all(q.evidence for q in tune)


def synthetic(bench: ModuleType, recall5: dict[str, dict[str, float]], p95: float, seconds: float) -> tuple:
    """An EmbedderRun with the given recall@5 per set and mode (MRR equal to it), and its data sets."""
    cmrc = bench.Corpus("cmrc", Path("."), {f"d{i}": "" for i in range(100)})
    demo = bench.Corpus("demo-kb", Path("."), {})
    sets = [
        bench.DataSet("cmrc", cmrc, [], squad=True),
        bench.DataSet("paraphrase_zh", demo, []),
        bench.DataSet("en_to_zh", demo, []),
    ]
    run = bench.EmbedderRun("x", model="x")
    run.ingests["cmrc"] = bench.Ingest(100, 150, seconds)
    for name, modes in recall5.items():
        run.sets[name] = bench.SetRun(
            measures={m: bench.Measure(v, v, v, 1.0, p95 if m == "hybrid" else 1.0) for m, v in modes.items()}
        )
    return run, sets


def test_targets_pass_and_fail_at_their_bounds(bench: ModuleType) -> None:
    good = {
        "cmrc": {"dense": 0.80, "bm25": 0.992, "hybrid": 0.992},
        "paraphrase_zh": {"dense": 0.7, "bm25": 0.5, "hybrid": 0.65},
        "en_to_zh": {"dense": 0.8, "bm25": 0.0, "hybrid": 0.80},
    }
    run, sets = synthetic(bench, good, p95=49.9, seconds=20.0)
    rows = bench.target_rows(sets, [run])
    assert [row[1].split()[-1] for row in rows] == ["pass"] * len(bench.TARGETS), rows

    bad = {
        "cmrc": {"dense": 0.79, "bm25": 0.993, "hybrid": 0.991},
        "paraphrase_zh": {"dense": 0.7, "bm25": 0.5, "hybrid": 0.64},
        "en_to_zh": {"dense": 0.8, "bm25": 0.0, "hybrid": 0.79},
    }
    run, sets = synthetic(bench, bad, p95=50.0, seconds=21.0)
    rows = bench.target_rows(sets, [run])
    assert [row[1].split()[-1] for row in rows] == ["FAIL"] * len(bench.TARGETS), rows


def test_targets_without_their_data_are_not_applicable(bench: ModuleType) -> None:
    run, sets = synthetic(bench, {"paraphrase_zh": {"dense": 0.5, "bm25": 0.5, "hybrid": 0.5}}, 1.0, 1.0)
    rows = bench.target_rows([sets[1]], [run])
    assert [row[1] for row in rows if row[1] == "n/a"] == ["n/a"] * (len(bench.TARGETS) - 1)
    assert rows[3][1].endswith("FAIL")


def squad_file(path: Path) -> Path:
    contexts = [
        ("长城是中国古代的军事防御工程，修筑历史可上溯到西周时期。", "长城的修筑历史可以上溯到什么时期？"),
        ("大熊猫主要栖息在四川、陕西和甘肃的山区，以竹子为主要食物。", "大熊猫主要吃什么？"),
        ("黄河是中国第二长河，全长约五千四百六十四公里。", "黄河全长大约多少公里？"),
    ]
    data = {
        "data": [
            {"paragraphs": [{"context": c, "qas": [{"question": q, "id": str(i)}]}]}
            for i, (c, q) in enumerate(contexts)
        ]
    }
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_small_run_scores_every_set_and_the_tune_replay_matches_search(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = squad_file(tmp_path / "mini_squad.json")
    argv = ["--data", str(data), "--sets", "paraphrase_zh", "--split", "check", "--distractors", "2"]
    runs = bench.main([*argv, "--latency-queries", "2", "--tune"])
    out = capsys.readouterr().out

    (run,) = runs
    questions = len(bench.load_project_set("paraphrase_zh", "check"))
    for name in ("mini_squad", "paraphrase_zh", "paraphrase_zh+2"):
        for mode in bench.MODES:
            measure = run.sets[name].measures[mode]
            assert 0 <= measure.recall1 <= measure.recall5 <= 1
            assert measure.p95_ms > 0
    assert run.sets["mini_squad"].measures["bm25"].recall1 == 1.0  # the questions copy their passage's words
    assert not math.isnan(run.sets["mini_squad"].measures["hybrid"].hit5)
    assert run.ingests["demo-kb"].documents == 9
    assert run.ingests["demo-kb+2"].documents == 9 + 2
    assert (
        run.sets["paraphrase_zh+2"].measures["dense"].recall1
        <= run.sets["paraphrase_zh"].measures["dense"].recall1
    )
    # Measured (0 when an earlier test in this process already loaded the model).
    assert not math.isnan(run.load_rss_mb) and run.load_rss_mb >= 0
    # The fusion grid replays the knowledge base's own fusion exactly.
    assert f"gold rank in the top 10 on {questions} of {questions} questions" in out
    assert "gold rank in the top 10 on 3 of 3 questions" in out
    assert out.count(f"top 10 on {questions} of {questions} questions") == 2  # without and with distractors
    assert (
        "| CMRC hybrid recall@5 >= 0.992 |" in out
        and "| English-to-Chinese hybrid recall@5 >= 0.80 | n/a |" in out
    )


def test_distractors_need_data(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--distractors", "5"])


def test_the_temporary_home_sees_the_installed_packs(
    bench: ModuleType, tmp_path: Path, isolated_home: Path
) -> None:
    pack = isolated_home / "models" / "multilingual-e5-small"
    pack.mkdir(parents=True)
    (pack / "pack.json").write_text("{}", encoding="utf-8")
    home = bench.temporary_home(tmp_path / "bench-home")
    assert (home / "models" / "multilingual-e5-small" / "pack.json").is_file()
    assert not (home / "kb").exists()  # the benchmark's knowledge bases stay out of the real home


def test_a_question_is_embedded_once_for_all_modes_and_the_model_is_restored_after(bench: ModuleType) -> None:
    import numpy as np

    calls: list[tuple[list[str], str]] = []

    class Index:
        def embed(self, texts: list[str], side: str = "passage") -> np.ndarray:
            calls.append((list(texts), side))
            return np.array([[len(t), side == "query"] for t in texts], dtype=np.float32)

    kb = Index()
    with bench.embeddings_reused(kb, ["q", "rr"]):
        assert calls == [(["q", "rr"], "query")]  # the questions, in one batch up front
        assert kb.embed(["rr"], side="query").tolist() == [[2.0, 1.0]]  # dense: no new embedding
        assert kb.embed(["rr"], side="query").tolist() == [[2.0, 1.0]]  # hybrid: none either
        assert kb.embed(["new"], side="query").tolist() == [[3.0, 1.0]]
        kb.embed(["new"], side="query")
        kb.embed(["q"], side="passage")  # another side is another text
        kb.embed(["a", "b"])  # a batch (ingest) is never memoized
        kb.embed(["a", "b"])
    assert calls[1:] == [
        (["new"], "query"),
        (["q"], "passage"),
        (["a", "b"], "passage"),
        (["a", "b"], "passage"),
    ]
    kb.embed(["q"], side="query")
    assert len(calls) == 6  # outside the block (the timed searches) every call embeds


def test_the_replay_takes_a_bm25_candidates_cosine_from_the_hybrid_ranking(bench: ModuleType) -> None:
    from assistant.knowledge import Fusion

    def c(chunk: str, cosine: float | None, bm25: float | None) -> object:
        return bench.Candidate(chunk, chunk, chunk == "C", cosine, bm25)

    dense = [c("A", 0.9, 0.5), c("B", 0.5, 0.0)]  # the dense list's lowest cosine, 0.5, is the floor
    bm25 = [c("C", None, 1.0), c("A", None, 0.5)]  # C: missed by the (approximate) dense index
    hybrid = [c("C", 0.8, 1.0), c("A", 0.9, 0.5)]
    fusion = Fusion(method="convex", dense_weight=1.0, bm25_weight=1.0)
    # C: (0.75 + 1) / 2 against A: (1 + 0.5) / 2, as search scores them.
    assert [x.chunk_id for x in bench.replay(fusion, dense, bm25, 1.0, hybrid)] == ["C", "A", "B"]
    # Without its cosine C gets no dense credit: (0 + 1) / 2.
    assert [x.chunk_id for x in bench.replay(fusion, dense, bm25, 1.0)] == ["A", "C", "B"]


def test_the_replay_scales_bm25_by_the_evidence_of_its_best_chunk_as_search_does(bench: ModuleType) -> None:
    import inspect

    from assistant.knowledge import Fusion

    fusion = Fusion(method="convex", dense_weight=1.0, bm25_weight=1.0)
    if "bm25_evidence" not in inspect.signature(fusion.combine).parameters:
        pytest.skip("this Fusion does not scale BM25 by its evidence")
    dense = [bench.Candidate("A", "A", False, 0.9, 0.1), bench.Candidate("B", "B", False, 0.5, 1.0)]
    # B holds every BM25 word there is, but they are no part of the question: no evidence.
    bm25 = [
        bench.Candidate("B", "B", False, None, 1.0, 0.0),
        bench.Candidate("A", "A", False, None, 0.1, 0.0),
    ]
    assert [c.chunk_id for c in bench.replay(fusion, dense, bm25, 1.0)] == ["A", "B"]
    # With full evidence B's BM25 lead counts: (0 + 1) / 2 = 0.5 against A's (1 + 0.1) / 2 = 0.55 ...
    full = [
        bench.Candidate("B", "B", False, None, 1.0, 1.0),
        bench.Candidate("A", "A", False, None, 0.1, 1.0),
    ]
    # ... and at BM25 weight 3 it wins: (0 + 3) / 4 against (1 + 0.3) / 4.
    heavy = Fusion(method="convex", dense_weight=1.0, bm25_weight=3.0)
    assert [c.chunk_id for c in bench.replay(heavy, dense, full, 1.0)] == ["B", "A"]
    assert [c.chunk_id for c in bench.replay(heavy, dense, bm25, 1.0)] == ["A", "B"]
