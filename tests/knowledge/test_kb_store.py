"""KnowledgeBase end to end with the packaged all-MiniLM-L6-v2: ingest, dedup, search, failures."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.errors import ConfigError, LadderError, ModelNotFoundError
from assistant.knowledge import (
    EmbeddingModelMismatch,
    Fusion,
    Hit,
    KnowledgeBase,
    KnowledgeBaseExists,
    KnowledgeBaseNotFound,
)
from assistant.progress import RecordingProgress
from assistant.settings import Settings, load_settings, replace

FACTS = {
    "leave.txt": "员工每年享有十五天带薪年假。年假需要提前两周向主管申请。",
    "gbk.txt": "公司总部位于杭州市西湖区，员工食堂每天中午十一点半开放。",
    "guide.md": "# Expense policy\n\nTravel expenses must be filed within thirty days with receipts.",
    "page.html": "<html><body><h1>VPN</h1><p>Connect to the VPN with the Lighthouse client.</p></body>",
    "phones.csv": "team,extension\nHelpdesk,4321\nPayroll,8765\n",
    "faq.jsonl": '{"text": "The cafeteria serves vegetarian dumplings every Friday."}\n',
}


def write_corpus(
    folder: Path, pdf_bytes: Callable[[list[str]], bytes], docx_file: Callable[..., Path]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FACTS.items():
        (folder / name).write_bytes(text.encode("gbk" if name == "gbk.txt" else "utf-8"))
    (folder / "manual.pdf").write_bytes(
        pdf_bytes(["Chapter one covers installation.", "Chapter two: the printer on floor 3 needs a badge."])
    )
    docx_file(folder / "security.docx", ["Security rules", "Passwords must be rotated every ninety days."])
    return folder


def top(kb: KnowledgeBase, query: str, mode: str = "hybrid") -> Hit:
    hits = kb.search(query, k=3, mode=mode)
    assert hits, f"no hits for {query!r}"
    return hits[0]


def test_create_open_list_and_delete(settings: Settings) -> None:
    with pytest.raises(KnowledgeBaseNotFound) as missing:
        KnowledgeBase.open("nope", settings)
    assert missing.value.exit_code == 3 and missing.value.hint == "ladder kb create nope"
    kb = KnowledgeBase.create("alpha", settings)
    with pytest.raises(KnowledgeBaseExists):
        KnowledgeBase.create("alpha", settings)
    with pytest.raises(ConfigError, match="invalid knowledge base name"):
        KnowledgeBase.create("../escape", settings)
    KnowledgeBase.create("beta", settings)
    assert KnowledgeBase.list_all(settings) == ["alpha", "beta"]
    assert kb.info()["embedding_model"] == "packaged:all-MiniLM-L6-v2"
    assert kb.info()["embedding_languages"] == ["en"]
    Path("a.txt").write_text("Alpha knowledge base content about zebras.")
    assert kb.add([Path("a.txt")]).ok
    kb.close()
    KnowledgeBase.delete("alpha", settings)
    assert KnowledgeBase.list_all(settings) == ["beta"]
    with pytest.raises(KnowledgeBaseNotFound):
        KnowledgeBase.delete("alpha", settings)
    # The same name can be created again in the same process (Chroma caches clients by path).
    again = KnowledgeBase.create("alpha", settings)
    assert again.search("zebras", k=1) == [] and again.info()["chunks"] == 0


def test_every_format_is_ingested_and_found(
    kb: KnowledgeBase, pdf_bytes: Callable[[list[str]], bytes], docx_file: Callable[..., Path]
) -> None:
    folder = write_corpus(Path("corpus"), pdf_bytes, docx_file)
    progress = RecordingProgress()
    report = kb.add([folder], progress=progress)
    assert report.ok and report.count("added") == 8, report.files
    assert progress.stages == ["reading files", "embedding chunks"]
    assert sum(v for kind, v in progress.events if kind == "advance" and isinstance(v, int) and v > 1) > 0
    cases = {
        "带薪年假有几天？": "leave.txt",
        "公司总部在哪里": "gbk.txt",
        "How long do I have to file travel expenses?": "guide.md",
        "Which client connects to the VPN?": "page.html",
        "payroll extension": "phones.csv",
        "When are vegetarian dumplings served?": "faq.jsonl",
        "printer badge floor": "manual.pdf",
        "How often must passwords be rotated?": "security.docx",
    }
    for query, source in cases.items():
        hit = top(kb, query)
        assert Path(hit.source).name == source, (query, hit)
    pdf_hit = top(kb, "printer badge floor")
    assert (
        pdf_hit.page == 2
        and "printer" in pdf_hit.text
        and pdf_hit.source == str(folder.resolve() / "manual.pdf")
    )
    gbk_hit = top(kb, "员工食堂几点开放", mode="bm25")
    assert "员工食堂每天中午十一点半开放" in gbk_hit.text  # GBK decoded, not mojibake
    sources = {Path(s.source).name: s for s in kb.sources()}
    assert sources["manual.pdf"].pages == 2 and sources["leave.txt"].pages is None
    assert kb.info()["sources"] == 8 and kb.info()["chunks"] == sum(s.chunks for s in sources.values())


def test_readd_is_a_no_op_a_changed_file_replaces_and_a_source_can_be_removed(kb: KnowledgeBase) -> None:
    doc = Path("notes.txt")
    doc.write_text("The launch code word is BLUEBIRD. " * 3)
    Path("other.txt").write_text("Unrelated text about gardening and tomatoes.")
    first = kb.add([doc, Path("other.txt")])
    assert [f.status for f in first.files] == ["added", "added"]
    chunk_ids = {h.chunk_id for h in kb.search("bluebird", k=5, mode="bm25")}

    again = kb.add([doc])
    assert again.files[0].status == "unchanged" and again.chunks_added == 0
    assert {h.chunk_id for h in kb.search("bluebird", k=5, mode="bm25")} == chunk_ids

    doc.write_text("The launch code word is now REDROBIN.")
    changed = kb.add([doc])
    assert changed.files[0].status == "replaced"
    assert changed.files[0].chunks_added == 1 and changed.files[0].chunks_removed == 1
    assert kb.search("bluebird", k=5, mode="bm25") == []
    assert "REDROBIN" in top(kb, "redrobin", mode="bm25").text
    assert kb.collection.count() == 2  # the old chunk is gone from Chroma too

    assert kb.remove_source("notes.txt") == 1
    assert kb.search("redrobin", k=5, mode="bm25") == []
    assert [Path(s.source).name for s in kb.sources()] == ["other.txt"]
    assert kb.remove_source("notes.txt") == 0


def test_same_content_under_another_path_is_skipped_and_chunking_change_rechunks(
    kb: KnowledgeBase, settings: Settings
) -> None:
    Path("a.txt").write_text("".join(f"Sentence {n} of the quarterly report. " for n in range(12)))
    Path("copy.txt").write_text(Path("a.txt").read_text())
    report = kb.add([Path("a.txt"), Path("copy.txt")])
    assert [f.status for f in report.files] == ["added", "duplicate"]
    assert report.files[1].reason and "a.txt" in report.files[1].reason
    before = kb.sources()[0].chunks
    smaller = KnowledgeBase.open("docs", replace(settings, chunk_size=100, chunk_overlap=10))
    rechunked = smaller.add([Path("a.txt")])
    assert rechunked.files[0].status == "replaced" and smaller.sources()[0].chunks > before
    assert smaller.sources()[0].chunking == "100/10"


def test_removing_a_folder_removes_every_source_under_it(kb: KnowledgeBase) -> None:
    Path("team/sub").mkdir(parents=True)
    Path("team/one.txt").write_text("first document about owls")
    Path("team/sub/two.txt").write_text("second document about otters")
    Path("teammate.txt").write_text("a file whose name starts like the folder, about eagles")
    kb.add([Path("team"), Path("teammate.txt")])
    assert kb.remove_source("team") == 2
    assert [Path(s.source).name for s in kb.sources()] == ["teammate.txt"]


def test_bm25_index_persists_across_reopen_and_other_objects_see_changes(
    kb: KnowledgeBase, settings: Settings
) -> None:
    Path("a.txt").write_text("火星探测器在二零二一年成功着陆乌托邦平原。")
    kb.add([Path("a.txt")])
    generation = kb.bm25.generation
    kb.close()
    reopened = KnowledgeBase.open("docs", settings)
    assert reopened.bm25.generation == generation and len(reopened.bm25.ids) == 1
    assert "乌托邦平原" in top(reopened, "探测器着陆在哪里", mode="bm25").text
    # Only the live generation is kept on disk.
    assert sorted(p.name for p in (reopened.folder / "bm25").glob("gen-*")) == [f"gen-{generation:06d}"]

    other = KnowledgeBase.open("docs", settings)
    Path("b.txt").write_text("月球背面的探测由嫦娥四号完成。")
    reopened.add([Path("b.txt")])
    assert "嫦娥四号" in top(other, "嫦娥四号", mode="bm25").text  # `other` picked up the new generation
    other.remove_source("b.txt")
    assert reopened.search("嫦娥四号", k=3, mode="bm25") == []


def test_bad_inputs_fail_one_by_one_and_the_rest_is_kept(
    kb: KnowledgeBase, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    Path("keep.txt").write_text("Existing knowledge: the office opens at nine.")
    assert kb.add([Path("keep.txt")]).ok
    before = kb.info()["chunks"]

    Path("good.md").write_text("New knowledge: the gym is on the roof.")
    Path("empty.txt").write_bytes(b"")
    Path("binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    Path("broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\n%%EOF")
    Path("big.txt").write_bytes(b"large file " * 20_000)  # ~0.21 MB
    Path("tool.exe").write_bytes(b"MZ\x90\x00")
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("secret")
    Path("loop.txt").symlink_to("loop2.txt")
    Path("loop2.txt").symlink_to("loop.txt")
    limited = KnowledgeBase.open("docs", replace(settings, max_file_mb=0.1))
    names = [
        "good.md",
        "empty.txt",
        "binary.txt",
        "broken.pdf",
        "big.txt",
        "tool.exe",
        str(outside),
        "loop.txt",
    ]
    report = limited.add([Path(n) for n in names])
    status = {Path(f.path).name: (f.status, f.reason or "") for f in report.files}
    assert status["good.md"][0] == "added"
    expected = {
        "empty.txt": "empty",
        "binary.txt": "binary",
        "broken.pdf": "not a readable PDF",
        "big.txt": "over the max_file_mb limit",
        "tool.exe": "unsupported file type",
        "secret.txt": "outside the allowed folders",
        "loop.txt": "symlink loop",
    }
    for name, reason in expected.items():
        assert status[name][0] == "failed" and reason in status[name][1], (name, status[name])
    assert len(report.failed) == 7 and not report.ok
    assert limited.info()["chunks"] == before + 1
    assert "nine" in top(limited, "when does the office open").text
    assert "roof" in top(limited, "where is the gym").text


def test_a_failed_store_write_rolls_back_that_file_only(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("ok.txt").write_text("Healthy file about sailing boats.")
    Path("bad.txt").write_text("".join(f"Sentence number {n} about failing disks. " for n in range(40)))
    collection = kb.collection
    real_add = collection.add
    monkeypatch.setattr("assistant.knowledge.writer.WRITE_BATCH", 2)
    calls: list[int] = []

    def flaky_add(**kwargs):  # type: ignore[no-untyped-def]
        if any("failing disks" in d for d in kwargs["documents"]):
            calls.append(len(kwargs["ids"]))
            if len(calls) == 2:  # the first batch of bad.txt landed; now the disk "fills up"
                raise OSError("disk full")
        real_add(**kwargs)

    monkeypatch.setattr(collection, "add", flaky_add)
    report = kb.add([Path("ok.txt"), Path("bad.txt")])
    status = {f.path: f for f in report.files}
    assert status["ok.txt"].status == "added"
    assert status["bad.txt"].status == "failed" and "disk full" in (status["bad.txt"].reason or "")
    assert calls == [2, 2]
    assert collection.count() == 1 == len(kb.bm25.ids)
    assert kb.search("failing disks", k=3, mode="bm25") == []


def test_an_interrupted_index_save_leaves_the_kb_as_it_was(
    kb: KnowledgeBase, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("a.txt").write_text("First document about lighthouses.")
    kb.add([Path("a.txt")])
    Path("b.txt").write_text("Second document about windmills.")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(kb.bm25, "save", interrupted)
        kb.add([Path("b.txt")])
    assert kb.collection.count() == 1
    reopened = KnowledgeBase.open("docs", settings)
    assert [Path(s.source).name for s in reopened.sources()] == ["a.txt"]
    again = reopened.add([Path("b.txt")]).files[0]
    assert again.status == "added", again


def test_a_lost_index_is_rebuilt_from_chroma_on_open(kb: KnowledgeBase, settings: Settings) -> None:
    Path("a.txt").write_text("北极熊生活在北冰洋周围的海冰上。")
    Path("b.txt").write_text("Penguins live in the southern hemisphere.")
    kb.add([Path("a.txt"), Path("b.txt")])
    kb.close()
    (kb.folder / "bm25" / "CURRENT").unlink()  # as if the process died before the first index save
    repaired = KnowledgeBase.open("docs", settings)
    assert sorted(Path(s.source).name for s in repaired.sources()) == ["a.txt", "b.txt"]
    assert "北极熊" in top(repaired, "北极熊生活在哪里", mode="bm25").text
    assert repaired.add([Path("a.txt")]).files[0].status == "unchanged"


def test_hybrid_retrieval_finds_the_right_document(kb: KnowledgeBase) -> None:
    docs = {
        "cars.txt": "Vehicle maintenance: change the engine oil of your car every 10,000 kilometres.",
        "cooking.txt": "To bake bread, knead the dough and let it rise for two hours before baking.",
        "astronomy.txt": "Jupiter is the largest planet in the solar system and has dozens of moons.",
        "river.txt": "长江是中国最长的河流，全长约六千三百公里，流经十一个省级行政区。",
        "tea.txt": "龙井茶产于浙江杭州西湖一带，是中国十大名茶之一。",
        "panda.txt": "大熊猫主要生活在四川、陕西和甘肃的山区，以竹子为主要食物。",
    }
    for name, text in docs.items():
        Path(name).write_text(text)
    kb.add([Path(n) for n in docs])
    cases = {
        "How often should I service my automobile?": "cars.txt",  # no shared word: dense finds it
        "biggest gas giant": "astronomy.txt",
        "bread dough rising time": "cooking.txt",
        "中国最长的河流是哪条？": "river.txt",
        "西湖出产什么茶": "tea.txt",
        "熊猫吃什么": "panda.txt",
    }
    for query, source in cases.items():
        hit = top(kb, query)
        assert Path(hit.source).name == source, (query, hit)
        assert hit.fused_score is not None and 0 < hit.fused_score <= 1
    car = top(kb, "How often should I service my automobile?")
    assert car.bm25_rank is None and car.dense_rank == 1 and car.dense_score and car.dense_score > 0.3


def test_hit_scores_separate_answerable_from_unanswerable_questions(kb: KnowledgeBase) -> None:
    Path("a.txt").write_text("员工每年享有十五天带薪年假，年假需要提前两周申请。")
    Path("b.txt").write_text("The printer on the third floor needs a badge to release print jobs.")
    kb.add([Path("a.txt"), Path("b.txt")])
    inside_zh = top(kb, "年假有几天？")
    inside_en = top(kb, "How do I release print jobs on the third floor printer?")
    outside_zh = top(kb, "火星上有没有水？")
    outside_en = top(kb, "What is the capital of Australia?")
    assert inside_zh.term_coverage == 1.0 and inside_zh.bm25_score and inside_zh.bm25_score > 0
    for inside in (inside_zh, inside_en):
        for outside in (outside_zh, outside_en):
            assert inside.score > outside.score + 0.3, (inside, outside)
    assert all(0 <= h.score <= 1 for h in (inside_zh, inside_en, outside_zh, outside_en))


def test_a_clear_bm25_winner_is_not_buried_under_arbitrary_bm25_ranks(kb: KnowledgeBase) -> None:
    """300 generated notes: every one says "case" and "limit", so each matches the query's
    common words with the same tiny BM25 score; only note 123 has "123". It used to fall out
    of the top 5 behind notes whose BM25 ranks 2..50 were an accident of tie order, and the
    hits came out of the order of the scores the CLI shows."""
    rng = random.Random(1)
    tails = ["", " Owner: ops.", " Owner: finance team.", " Reviewed yearly by the finance team.",
             " See the handbook.", " Applies to all regions and contractors."]  # fmt: skip
    notes = Path("notes")
    notes.mkdir()
    for n in range(1, 301):
        text = f"Case {n}: the limit is {rng.randint(10, 999)} units per day.{rng.choice(tails)}"
        if n == 123:  # a note the embedding model finds far from the question
            text = (
                "Case 123 notes from the spring offsite. The cafeteria menu changes on Mondays, parking "
                "passes are renewed in March, and the printer on floor three needs a badge. "
                "Its limit is 450 units."
            )
        (notes / f"note{n:03d}.txt").write_text(text, encoding="utf-8")
    kb.add([notes])
    query = "What is the limit for case 123?"
    hits = kb.search(query, k=5)
    winner = kb.search(query, k=1, mode="bm25")[0]
    assert Path(winner.source).name == "note123.txt" and winner.bm25_score
    runner_up = kb.search(query, k=2, mode="bm25")[1]
    assert runner_up.bm25_score and winner.bm25_score > 100 * runner_up.bm25_score, "a clear margin"
    assert Path(hits[0].source).name == "note123.txt", [(Path(h.source).name, h.score) for h in hits]
    assert hits[0].bm25_rank == 1 and hits[0].score > 0.6
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True), "the order shown is the order of the scores shown"
    fused = [h.fused_score or 0.0 for h in hits]
    assert fused == sorted(fused, reverse=True)
    # Notes that share only the common words earn nothing from BM25: the dense order decides.
    assert [h.dense_rank for h in hits[1:]] == [1, 2, 3, 4] and all(h.bm25_rank is None for h in hits[1:])
    # The winner ties with the dense model's first choice (each is first in one list), and
    # the tie goes to the better relevance, not to the smaller chunk id.
    assert hits[0].fused_score == pytest.approx(hits[1].fused_score) and hits[0].score > hits[1].score


def test_bm25_ties_share_their_places_and_near_zero_scores_earn_nothing() -> None:
    import numpy as np

    fusion = Fusion()
    scores = np.array([0.0, 5.0, 2.0, 5.0, 0.001, 2.0, 2.0, 4.0, 0.049, 0.05])
    places = fusion.bm25_places(scores, depth=4)
    # 5.0 twice (places 1-2), 4.0 (3), then the 2.0 tie: cut at depth 4 but taken whole
    # (4-6); 0.05 is 1% of the best (7), 0.049 and 0.001 are under it: no match.
    assert places == [(1, 1, 2), (3, 1, 2), (7, 3, 3), (2, 4, 6), (5, 4, 6), (6, 4, 6)]
    assert fusion.bm25_places(scores, depth=10)[-1] == (9, 7, 7)
    near = fusion.bm25_places(np.array([10.0, 10.0 + 1e-12, 9.99, 1.0]), depth=10)
    assert near == [(1, 1, 2), (0, 1, 2), (2, 3, 3), (3, 4, 4)], "equal up to rounding is a tie"
    loose = Fusion(tie_tolerance=0.01, bm25_floor=0.0).bm25_places(np.array([10.0, 9.95, 9.85, 0.01]), 10)
    assert loose == [(0, 1, 2), (1, 1, 2), (2, 3, 3), (3, 4, 4)], "a tie is anchored at its best score"
    assert fusion.bm25_places(np.zeros(3), 10) == []
    fused = dict(fusion.fuse(["d"], ["a", "b", "c"], bm25_places=[(1, 2), (1, 2), (3, 3)]))
    assert fused["a"] == fused["b"] == pytest.approx((1 / 11 + 1 / 12) / 2 / (2 / 11))
    assert fused["c"] == pytest.approx(1 / 13 / (2 / 11)) and fused["d"] == pytest.approx(0.5)
    assert fusion.fuse(["x"], ["y"]) == [("x", 0.5), ("y", 0.5)], "without places: one place each"
    for bad in ({"tie_tolerance": 1.0}, {"bm25_floor": -0.1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Fusion(**bad)


def test_search_arguments_are_checked(kb: KnowledgeBase) -> None:
    with pytest.raises(ConfigError, match="mode must be one of"):
        kb.search("x", mode="fuzzy")
    with pytest.raises(ConfigError, match="k must be > 0"):
        kb.search("x", k=0)
    with pytest.raises(LadderError, match="empty"):
        kb.search("   ")
    with pytest.raises(ConfigError, match="no reranker is configured"):
        kb.search("x", rerank=True)
    assert kb.search("anything at all") == []  # an empty knowledge base has no hits


def test_reranker_plumbing(settings: Settings, tiny_cross_encoder_dir: Path) -> None:
    kb = KnowledgeBase.create("reranked", replace(settings, reranker_model=str(tiny_cross_encoder_dir)))
    for n in range(6):
        Path(f"d{n}.txt").write_text(f"document {n} about topic {n} and reranking")
    kb.add([Path(f"d{n}.txt") for n in range(6)])
    hits = kb.search("reranking topic", k=3)  # rerank=None: on, because reranker_model is set
    assert len(hits) == 3 and all(h.rerank_score is not None and h.score == h.rerank_score for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    plain = kb.search("reranking topic", k=3, rerank=False)
    assert all(h.rerank_score is None for h in plain)


def test_any_sentence_transformers_folder_and_model_mismatch(
    settings: Settings, tiny_embedder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = replace(settings, embedding_model=str(tiny_embedder_dir))
    kb = KnowledgeBase.create("custom", custom)
    Path("a.txt").write_text("custom embedding model text")
    assert kb.add([Path("a.txt")]).ok
    info = kb.info()
    assert info["embedding_model"] == str(tiny_embedder_dir.resolve()) and info["embedding_dim"] == 16
    assert kb.search("custom embedding", k=1, mode="dense")[0].dense_score is not None
    # Unset, the setting defers to the model the knowledge base remembers.
    monkeypatch.delenv("LADDER_EMBEDDING_MODEL")
    assert KnowledgeBase.open("custom", load_settings()).search("custom", k=1, mode="dense")
    # A folder that is not a model is refused with its own error.
    monkeypatch.setenv("LADDER_EMBEDDING_MODEL", str(Path("not-a-model").resolve()))
    with pytest.raises(ModelNotFoundError, match="not a sentence-transformers folder"):
        KnowledgeBase.open("custom", load_settings()).search("x")
    packaged = KnowledgeBase.create("packaged", settings)
    mismatched = KnowledgeBase.open("packaged", custom)
    with pytest.raises(
        EmbeddingModelMismatch, match="was built with embedding model packaged:all-MiniLM-L6-v2"
    ):
        mismatched.search("x")
    with pytest.raises(EmbeddingModelMismatch):
        mismatched.add([Path("a.txt")])
    assert packaged.info()["chunks"] == 0
    assert mismatched.search("custom", mode="bm25") == []  # BM25 needs no embedding model


def test_kb_json_records_the_model(kb: KnowledgeBase) -> None:
    meta = json.loads((kb.folder / "kb.json").read_text())
    assert meta["embedding_model"] == "packaged:all-MiniLM-L6-v2"
    assert os.path.isdir(meta["embedding_model_path"])


def test_ingest_and_search_open_no_outside_socket(tmp_path: Path) -> None:
    """Chroma (telemetry), sentence-transformers and jieba stay offline, even with no privacy env set."""
    root = Path(__file__).resolve().parents[2]
    code = (
        "import tests.socket_guard as guard\n"
        "guard.install()\n"
        "from pathlib import Path\n"
        "from assistant.knowledge import KnowledgeBase\n"
        "from assistant.settings import load_settings\n"
        f"flags = {{'home': {str(tmp_path / 'home')!r}, 'allowed_roots': {str(tmp_path)!r}}}\n"
        "settings = load_settings(flags)\n"
        "kb = KnowledgeBase.create('guarded', settings)\n"
        f"doc = Path({str(tmp_path / 'doc.txt')!r})\n"
        "doc.write_text('长城是中国古代的军事防御工程。The Great Wall is a fortification.')\n"
        "assert kb.add([doc]).ok\n"
        "print('HITS', len(kb.search('长城', k=1)), len(kb.search('Great Wall', k=1, mode='dense')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "ANONYMIZED_TELEMETRY"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert "HITS 1 1" in result.stdout, result.stdout + result.stderr
    assert "SOCKET-GUARD" not in result.stderr, result.stderr


def test_convex_fusion_keeps_margins_and_weighs_bm25_by_its_evidence() -> None:
    fusion = Fusion()
    cosines = {"keyword": 0.70, "near1": 0.90, "near2": 0.89, "far": 0.60}
    bm25 = {"keyword": 9.0, "near1": 0.5, "near2": 0.4}
    # BM25's best chunk holds the whole question: an exact keyword match by a wide margin stays
    # first, ahead of chunks that are merely good in both lists (rank fusion put it behind them).
    full = fusion.combine(cosines, bm25, dense_floor=0.60, bm25_evidence=1.0)
    assert full[0][0] == "keyword"
    rrf = Fusion(method="rrf").fuse(["near1", "near2", "keyword", "far"], ["keyword", "near1", "near2"])
    assert rrf[0][0] != "keyword", "rank fusion throws the margin away"
    # BM25's best chunk shares one word with a paraphrased question: its order is noise and the
    # dense order decides.
    weak = fusion.combine(cosines, bm25, dense_floor=0.60, bm25_evidence=0.1)
    assert [c for c, _ in weak][:2] == ["near1", "near2"]
    # 1.0 = best in both; equal fused scores go to the better BM25 score, then the cosine.
    assert fusion.combine({"a": 0.9}, {"a": 3.0}, 0.5) == [("a", 1.0)]
    tie = fusion.combine({"a": 0.9, "b": 0.5}, {"b": 3.0}, dense_floor=0.5)
    assert [c for c, _ in tie] == ["b", "a"] and tie[0][1] == pytest.approx(tie[1][1])
    with pytest.raises(ValueError, match="method"):
        Fusion(method="sum")


def test_a_store_that_stops_answering_stops_the_ingest_with_exit_5(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Chroma server going away mid-ingest is the endpoint's failure (exit 5), not each file's:
    the command stops instead of reporting every remaining file as failed, and what reached the
    store before stays findable."""
    from assistant.errors import BackendError

    Path("first.txt").write_text("Healthy file about sailing boats.")
    Path("second.txt").write_text("Another file about mountain huts.")
    collection = kb.collection
    real_add = collection.add

    def gone(**kwargs):  # type: ignore[no-untyped-def]
        if any("mountain huts" in d for d in kwargs["documents"]):
            raise BackendError("the Chroma server at 127.0.0.1:1 stopped answering")
        real_add(**kwargs)

    monkeypatch.setattr(collection, "add", gone)
    with pytest.raises(BackendError) as caught:
        kb.add([Path("first.txt"), Path("second.txt")])
    assert caught.value.exit_code == 5
    reopened = KnowledgeBase.open(kb.name, kb.settings)
    assert reopened.search("sailing boats", k=1, mode="bm25")[0].source.endswith("first.txt")
