"""Fine-tune: preview the data preparation and its report, train a LoRA adapter in a background
process (it survives a reload) with a live loss curve and the monitor's verdict, stop and
resume, list adapters with their manifests, and evaluate before against after."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import streamlit as st

from ui.web import jobs
from ui.web.common import guard, settings, ui_dir
from ui.web.components import empty_state, job_panel
from ui.web.files import find_suites, short
from ui.web.i18n import lazy, t
from ui.web.model_text import safe_markdown

cfg = settings()
st.title(t("ft.title"))
st.caption(t("ft.caption"))
prepare_tab, train_tab, adapters_tab = st.tabs([t("ft.tab.prepare"), t("ft.tab.train"), t("ft.tab.adapters")])
DATA_ROOT = ui_dir(cfg) / "finetune"


def _slug(text: str) -> str:
    return re.sub(r"[^\w\-]+", "_", text).strip("_") or "data"


def _prepared() -> list[Path]:
    return sorted(p.parent for p in DATA_ROOT.glob("*/report.json")) if DATA_ROOT.is_dir() else []


# ---- prepare --------------------------------------------------------------------------------------
def _show_report(folder: Path) -> None:
    import pandas as pd

    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    splits = report.get("splits", {})
    mixing = report.get("mixing", {})
    dups = report.get("duplicates", {})
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("ft.train_examples"), str(splits.get("train", {}).get("total", 0)))
    c2.metric(t("ft.domain_train"), str(mixing.get("domain_train", splits.get("train", {}).get("domain", 0))))
    c3.metric(
        t("ft.duplicates"),
        f"{dups.get('counts', {}).get('exact', 0)} + {dups.get('counts', {}).get('near', 0)}",
    )
    c4.metric(t("ft.mixing"), f"1 : {mixing.get('ratio', 0):g}")
    st.caption(t("ft.funnel"))
    st.dataframe(
        [
            {
                t("ft.col.data"): s["data"],
                t("ft.col.step"): s["step"],
                t("ft.col.before"): s["before"],
                t("ft.col.after"): s["after"],
                t("ft.col.dropped"): ", ".join(f"{k}: {v}" for k, v in s["dropped"].items()),
            }
            for s in report.get("steps", [])
        ],
        hide_index=True,
        width="stretch",
    )
    st.caption(t("ft.splits"))
    st.dataframe(
        [{t("ft.col.split"): name, **counts} for name, counts in splits.items()],
        hide_index=True,
        width="stretch",
    )
    lengths = report.get("lengths", {})
    if lengths.get("histogram"):
        st.caption(
            t(
                "ft.lengths",
                tokenizer=lengths.get("tokenizer", ""),
                median=lengths.get("median"),
                p95=lengths.get("p95"),
            )
        )
        histogram = pd.DataFrame(lengths["histogram"]).set_index("bucket")
        st.bar_chart(histogram, height=220)
    if report.get("leakage"):
        st.warning(t("ft.leaks", n=len(report["leakage"])))


with prepare_tab:
    with st.form("ft_prepare"):
        domain = st.text_area(t("ft.domain"), placeholder="datasets/sft/support_tickets.jsonl", height=80)
        c1, c2, c3 = st.columns(3)
        name = c1.text_input(t("ft.data_name"), value="my-data")
        general = c2.text_input(t("ft.general"), value="default", help=t("ft.general_help"))
        ratio = c3.number_input(t("ft.ratio"), 0.0, 50.0, 5.0, step=0.5)
        c1, c2, c3 = st.columns(3)
        data_format = c1.selectbox(t("ft.format"), ["auto", "alpaca", "chat", "qa", "text"])
        split = c2.text_input(t("ft.split"), value="0.8,0.1,0.1")
        min_examples = c3.number_input(t("ft.min_examples"), 1, 100_000, 50)
        mask_pii = st.checkbox(t("ft.mask_pii"))
        go = st.form_submit_button(t("ft.prepare"), type="primary")
    if go:
        files = [line.strip() for line in domain.splitlines() if line.strip()]
        if not files:
            st.warning(t("ft.need_domain"))
        else:
            out = DATA_ROOT / _slug(name)
            argv = ["finetune", "prepare", "--out", str(out), "--general", general.strip() or "default",
                    "--ratio", str(ratio), "--format", data_format, "--split", split,
                    "--min-examples", str(int(min_examples)), "--force"]  # fmt: skip
            for file in files:
                argv += ["--domain", str(Path(file).expanduser().resolve())]
            if mask_pii:
                argv.append("--mask-pii")
            job = jobs.launch(
                cfg, "cli", {"argv": argv, "out": str(out)}, lazy("ft.prepare_job", name=_slug(name))
            )
            st.session_state["ft_prep_job"] = job.job_id
    prep_job = job_panel(cfg, st.session_state.get("ft_prep_job"), "ft_prep", stoppable=False)
    prepared = _prepared()
    if prep_job is not None and prep_job.status == jobs.DONE:
        st.session_state["ft_report"] = prep_job.params.get("out")
    if prepared:
        shown = st.session_state.get("ft_report")
        names = [str(p) for p in prepared]
        pick = st.selectbox(
            t("ft.report_of"),
            names,
            index=names.index(shown) if shown in names else 0,
            format_func=lambda p: Path(p).name,
        )
        if pick:
            with guard():
                _show_report(Path(pick))
    else:
        empty_state(t("ft.no_prepared"))


# ---- train ----------------------------------------------------------------------------------------
def _runs(adapter: str | None = None) -> list[Any]:
    from finetune.store import TrainingStore

    with TrainingStore(cfg.db_path) as store:
        return store.list_runs(adapter=adapter, limit=20)


def _curve(run_id: str) -> None:
    import pandas as pd

    from finetune.store import TrainingStore

    with TrainingStore(cfg.db_path) as store:
        names = [n for n in store.metric_names(run_id) if n.endswith("loss")]
        series = {name: store.series(run_id, name) for name in names}
        run = store.get_run(run_id)
    if run is None:
        return
    st.caption(t("ft.run_line", run=run.run_id, adapter=run.adapter, base=run.base, status=run.status,
                 step=run.step, total=run.total_steps))  # fmt: skip
    if run.total_steps:
        st.progress(min(1.0, run.step / run.total_steps), text=f"{run.step}/{run.total_steps}")
    rows = [
        {"step": step, "metric": name, "loss": value}
        for name, points in series.items()
        for step, value in points
    ]
    if rows:
        data = pd.DataFrame(rows).pivot_table(index="step", columns="metric", values="loss")
        st.line_chart(data, height=260)
    else:
        st.info(t("ft.no_steps"))
    if run.verdict:
        box = st.error if run.verdict == "diverging" else st.warning if run.verdict == "spikes" else st.info
        box(t("ft.verdict", verdict=run.verdict, message=run.message or ""))
    if run.error:
        st.error(safe_markdown(run.error))


with train_tab:
    prepared = _prepared()
    with st.form("ft_train"):
        c1, c2 = st.columns(2)
        adapter = c1.text_input(t("ft.adapter"), value="my-adapter")
        base = c2.text_input(t("ft.base"), value=cfg.model)
        data_pick = st.selectbox(
            t("ft.data"),
            [str(p) for p in prepared],
            format_func=lambda p: Path(p).name,
            index=0 if prepared else None,
        )
        data_path = st.text_input(t("ft.data_path"), placeholder="data/tickets")
        c1, c2, c3, c4 = st.columns(4)
        epochs = c1.number_input(t("ft.epochs"), 0.1, 100.0, 3.0, step=0.5)
        max_steps = c2.number_input(t("ft.max_steps"), 0, 1_000_000, 0)
        lr = c3.number_input(t("ft.lr"), 1e-6, 1e-1, 2e-4, format="%.0e")
        batch = c4.number_input(t("ft.batch"), 1, 256, 8)
        start = st.form_submit_button(t("ft.train"), type="primary")
    if start:
        data = data_path.strip() or data_pick
        if not data:
            st.warning(t("ft.need_data"))
        else:
            data_dir = str(Path(data).expanduser().resolve())
            argv = ["finetune", "train", "--name", adapter.strip(), "--data", data_dir,
                    "--base", base.strip() or cfg.model, "--epochs", str(epochs), "--lr", str(lr),
                    "--batch-size", str(int(batch))]  # fmt: skip
            if max_steps:
                argv += ["--max-steps", str(int(max_steps))]
            job = jobs.launch(
                cfg, "cli", {"argv": argv, "adapter": adapter.strip()}, lazy("ft.train_job", name=adapter)
            )
            st.session_state["ft_train_job"] = job.job_id
    train_jobs = [j for j in jobs.list_jobs(cfg, "cli") if j.params.get("adapter")]
    current = st.session_state.get("ft_train_job") or (train_jobs[0].job_id if train_jobs else None)
    train_job = job_panel(cfg, current, "ft_train")
    resumable = train_job is not None and train_job.status in (jobs.STOPPED, jobs.DIED, jobs.FAILED)
    if train_job is not None and resumable and st.button(t("ft.resume"), key="ft_resume"):
        name = train_job.params["adapter"]
        argv = ["finetune", "train", "--name", name, "--resume"]
        job = jobs.launch(cfg, "cli", {"argv": argv, "adapter": name}, lazy("ft.resume_job", name=name))
        st.session_state["ft_train_job"] = job.job_id
        st.rerun()
    with guard():
        runs = _runs()
        if not runs:
            empty_state(t("ft.no_runs"))
        else:
            labels = {r.run_id: f"{r.adapter} · {r.status} · {r.created[:16]}" for r in runs}
            run_id = st.selectbox(t("ft.run"), list(labels), format_func=labels.__getitem__)
            live = any(r.status == "running" for r in runs)

            @st.fragment(run_every=2.0 if live else None)
            def _live() -> None:
                if run_id:
                    _curve(run_id)

            _live()


# ---- adapters -------------------------------------------------------------------------------------
with adapters_tab, guard():
    from finetune.adapters import list_adapters

    adapters = list_adapters(cfg)
    if not adapters:
        empty_state(t("ft.no_adapters"))
    else:
        st.dataframe(
            [
                {
                    t("ft.col.name"): a["name"],
                    t("ft.col.base"): (a.get("base_model") or {}).get("ref", ""),
                    t("ft.col.created"): str(a.get("created", ""))[:16],
                    t("ft.col.status"): (a.get("results") or {}).get("status", ""),
                    t("ft.col.size"): f"{a['size_bytes'] / 1e6:.1f} MB",
                }
                for a in adapters
            ],
            hide_index=True,
            width="stretch",
        )
        chosen = st.selectbox(t("ft.adapter"), [a["name"] for a in adapters], key="ft_adapter_pick")
        manifest = next(a for a in adapters if a["name"] == chosen)
        with st.expander(t("ft.manifest")):
            st.json(manifest, expanded=False)
        evaluations = manifest.get("evaluations") or []
        if evaluations:
            st.caption(t("ft.evaluations"))
            st.dataframe(evaluations, hide_index=True, width="stretch")
        st.subheader(t("ft.before_after"))
        suites = [str(p) for p in find_suites(cfg)]
        suite = st.selectbox(
            t("eval.suite"), suites, format_func=short, index=0 if suites else None, key="ft_suite"
        )
        limit = st.number_input(t("eval.limit"), 0, 100_000, 0, key="ft_limit")
        if st.button(t("ft.evaluate"), disabled=not suite) and suite:
            base_ref = (manifest.get("base_model") or {}).get("ref") or cfg.model
            folder = DATA_ROOT / "compare" / _slug(str(chosen))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "before.yaml").write_text(
                f"strategy: prompt\nmodel: {json.dumps(base_ref)}\n", encoding="utf-8"
            )
            (folder / "after.yaml").write_text(
                f"strategy: prompt\nmodel: {json.dumps(base_ref + '+' + str(chosen))}\n", encoding="utf-8"
            )
            job = jobs.launch(
                cfg,
                "eval",
                {
                    "suite": suite,
                    "strategies": [str(folder / "before.yaml"), str(folder / "after.yaml")],
                    "limit": int(limit) or None,
                    "no_judge": True,
                },
                lazy("ft.compare_job", name=chosen),
            )
            st.session_state["ft_cmp_job"] = job.job_id
        cmp_job = job_panel(cfg, st.session_state.get("ft_cmp_job"), "ft_cmp")
        if cmp_job is not None and cmp_job.status == jobs.DONE:
            from evaluation.store import RunStore
            from ui.web.components import score_rows

            with RunStore(cfg.db_path) as store:
                result = store.load_run(cmp_job.result["run_id"])
            st.dataframe(score_rows(result), hide_index=True, width="stretch")
            for c in result.comparisons:
                if c.diff is not None and c.p_value is not None:
                    st.caption(f"after − before · {c.metric}: {c.diff:+.3f} (p={c.p_value:.3g})")
