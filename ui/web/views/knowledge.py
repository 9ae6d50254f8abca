"""Knowledge base: create one, upload files (ingested in the background, with a per-file
report), browse and search chunks, delete sources, set chunking and retrieval options."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from assistant.strategies.rag import DEFAULT_MIN_SCORE
from ui.web import jobs
from ui.web.common import guard, settings, ui_dir
from ui.web.components import empty_state, job_panel
from ui.web.i18n import lazy, t
from ui.web.model_text import label_text

SAFE_NAME = re.compile(r"[^\w.\-\u3400-\u9fff]+")
cfg = settings()
st.title(t("kb.title"))
st.caption(t("kb.caption"))


def _names() -> list[str]:
    from assistant.knowledge import KnowledgeBase

    return KnowledgeBase.list_all(cfg)


with st.expander(t("kb.create"), expanded=not _names()), st.form("kb_create", clear_on_submit=True):
    new_name = st.text_input(t("kb.name"), placeholder="handbook")
    if st.form_submit_button(t("kb.create_button")) and new_name.strip():
        with guard(t("kb.create")):
            from assistant.knowledge import KnowledgeBase

            KnowledgeBase.create(new_name.strip(), cfg)
            st.session_state["kb_selected"] = new_name.strip()
            st.success(t("kb.created", name=new_name.strip()))

names = _names()
if not names:
    empty_state(t("kb.empty"))
    st.stop()
if st.session_state.get("kb_selected") not in names:
    st.session_state["kb_selected"] = names[0]
name = st.selectbox(t("kb.pick"), names, key="kb_selected")
assert name is not None


def _summary() -> dict[str, object]:
    from assistant.knowledge import KnowledgeBase

    return KnowledgeBase.summary(name, cfg)


with guard():
    info = _summary()
    c1, c2, c3 = st.columns(3)
    c1.metric(t("kb.sources"), str(info["sources"]))
    c2.metric(t("kb.chunks"), str(info["chunks"]))
    c3.caption(t("kb.embedding"))
    c3.text(str(info["embedding_model"]).split("/")[-1].removeprefix("packaged:"))

upload_tab, search_tab, sources_tab, options_tab = st.tabs(
    [t("kb.tab.upload"), t("kb.tab.search"), t("kb.tab.sources"), t("kb.tab.options")]
)

# ---- options (read by the other tabs) --------------------------------------------------------------
with options_tab:
    st.subheader(t("kb.chunking"))
    c1, c2 = st.columns(2)
    chunk_size = c1.number_input(t("kb.chunk_size"), 50, 10_000, cfg.chunk_size, step=50, key="kb_chunk_size")
    chunk_overlap = c2.number_input(
        t("kb.chunk_overlap"), 0, 5_000, cfg.chunk_overlap, step=10, key="kb_chunk_overlap"
    )
    if chunk_overlap >= chunk_size:
        st.warning(t("kb.overlap_too_big"))
    st.caption(t("kb.chunking_note"))
    st.subheader(t("kb.retrieval"))
    c1, c2, c3 = st.columns(3)
    c1.number_input(t("kb.top_k"), 1, 50, 5, key="kb_top_k")
    c2.selectbox(t("kb.mode"), ["hybrid", "dense", "bm25"], key="kb_mode")
    c3.slider(t("kb.min_score"), 0.0, 1.0, DEFAULT_MIN_SCORE, 0.05, key="kb_min_score")
    st.caption(t("kb.retrieval_note"))

# ---- upload ---------------------------------------------------------------------------------------
with upload_tab:
    from assistant.knowledge.loaders import SUPPORTED_EXTENSIONS

    st.caption(t("kb.upload_help", types=" ".join(SUPPORTED_EXTENSIONS), mb=f"{cfg.max_file_mb:g}"))
    uploads = st.session_state.setdefault("kb_uploads", 0)  # a new key empties the uploader
    files = st.file_uploader(t("kb.files"), accept_multiple_files=True, key=f"kb_files_{name}_{uploads}")
    running = jobs.active(cfg, "kb_add")
    if st.button(t("kb.ingest"), type="primary", disabled=not files or bool(running)):
        folder = ui_dir(cfg) / "uploads" / name
        folder.mkdir(parents=True, exist_ok=True)
        accepted: list[str] = []
        refused: list[str] = []
        for upload in files or []:
            clean = SAFE_NAME.sub("_", Path(upload.name).name).strip("._") or "file"
            suffix = Path(clean).suffix.lower()
            if suffix not in SUPPORTED_EXTENSIONS:
                refused.append(
                    t("kb.refused_type", file=label_text(upload.name), types=" ".join(SUPPORTED_EXTENSIONS))
                )
                continue
            if upload.size > cfg.max_file_mb * 1024 * 1024:
                refused.append(t("kb.refused_size", file=label_text(upload.name), mb=f"{cfg.max_file_mb:g}"))
                continue
            target = folder / clean
            target.write_bytes(upload.getvalue())
            accepted.append(str(target))
        st.session_state["kb_refused"] = refused
        st.session_state["kb_uploads"] = uploads + 1
        if accepted:
            job = jobs.launch(
                cfg,
                "kb_add",
                {
                    "name": name,
                    "paths": accepted,
                    "root": str(folder),
                    "chunk_size": int(chunk_size),
                    "chunk_overlap": int(chunk_overlap),
                },
                lazy("kb.job_title", n=len(accepted), name=name),
            )
            st.session_state["kb_job"] = job.job_id
        st.rerun()
    for message in st.session_state.get("kb_refused", []):
        st.error(message)
    recent = [j for j in jobs.list_jobs(cfg, "kb_add", limit=5) if j.params.get("name") == name]
    job_id = st.session_state.get("kb_job") or (recent[0].job_id if recent else None)
    kb_job = job_panel(cfg, job_id, "kb")
    if kb_job is not None and kb_job.status == jobs.DONE:
        rows = [
            {
                t("kb.col.file"): Path(f["path"]).name,
                t("kb.col.status"): t("kb.status." + f["status"]),
                t("kb.col.chunks"): f["chunks_added"],
                t("kb.col.removed"): f["chunks_removed"],
                t("kb.col.pages"): f["pages"] or "",
                t("kb.col.note"): f["reason"] or "",
            }
            for f in kb_job.result.get("files", [])
        ]
        st.subheader(t("kb.report"))
        st.dataframe(rows, hide_index=True, width="stretch")
        failed = [f for f in kb_job.result.get("files", []) if f["status"] == "failed"]
        if failed:
            st.warning(t("kb.some_failed", n=len(failed)))

# ---- search and browse ----------------------------------------------------------------------------
with search_tab:
    query = st.text_input(t("kb.query"), key="kb_query", placeholder=t("kb.query_placeholder"))
    if query.strip():
        with guard(t("kb.tab.search")):
            from assistant.knowledge import KnowledgeBase
            from assistant.knowledge.retrieve import order_score

            mode = str(st.session_state["kb_mode"])
            with KnowledgeBase.open(name, cfg) as kb:
                hits = kb.search(query, k=int(st.session_state["kb_top_k"]), mode=mode)
            if not hits:
                st.info(t("kb.no_hits"))
            for rank, hit in enumerate(hits, start=1):
                where = label_text(Path(hit.source).name) + (
                    f" · p.{hit.page}" if hit.page is not None else ""
                )
                # Hits come in the order of their score; relevance is what min_score compares.
                score = order_score(hit, mode)
                scores = f"{t('kb.order_score')} {score:.3f} · {t('kb.score')} {hit.score:.3f}"
                with st.expander(f"{rank}. {where} · #{hit.chunk} · {scores}"):
                    st.text(hit.text)

# ---- sources --------------------------------------------------------------------------------------
with sources_tab, guard(t("kb.tab.sources")):
    from assistant.knowledge import KnowledgeBase

    with KnowledgeBase.open(name, cfg) as kb:
        sources = kb.sources()
        if not sources:
            empty_state(t("kb.no_sources"))
        else:
            st.dataframe(
                [
                    {
                        t("kb.col.file"): Path(s.source).name,
                        t("kb.col.chunks"): s.chunks,
                        t("kb.col.pages"): s.pages or "",
                        t("kb.col.size"): f"{s.size_bytes / 1024:.1f} KB",
                        t("kb.col.chunking"): s.chunking,
                        t("kb.col.path"): s.source,
                    }
                    for s in sources
                ],
                hide_index=True,
                width="stretch",
            )
            chosen = st.selectbox(
                t("kb.source"), [s.source for s in sources], format_func=lambda s: Path(s).name
            )
            c1, c2 = st.columns(2)
            if c1.toggle(t("kb.browse"), key="kb_browse") and chosen:
                stored = kb.collection.get(where={"source": chosen}, include=["documents", "metadatas"])
                chunks = sorted(
                    zip(stored["documents"], stored["metadatas"], strict=True),
                    key=lambda pair: int(pair[1].get("chunk", 0)),
                )
                for text, meta in chunks[:200]:
                    page = f" · p.{meta['page']}" if meta.get("page") is not None else ""
                    st.caption(f"#{meta.get('chunk')}{page}")
                    st.text(text)
            if c2.button(t("kb.remove_source"), key="kb_remove") and chosen:
                removed = kb.remove_source(chosen)
                st.success(t("kb.removed", n=removed, file=label_text(Path(chosen).name)))
                st.rerun()
    st.divider()
    confirm = st.checkbox(t("kb.confirm_delete", name=name), key="kb_confirm_delete")
    if st.button(t("kb.delete"), disabled=not confirm, key="kb_delete"):
        with guard(t("kb.delete")):  # a Chroma server that stopped answering is a message, not a traceback
            KnowledgeBase.delete(name, cfg)
            st.session_state.pop("kb_selected", None)
            st.rerun()
