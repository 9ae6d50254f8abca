"""Evaluate: pick a suite and strategies, run them in the background with progress; results
with CIs, charts, the worst items first; compare two runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.strategies.base import strategy_names
from ui.web import jobs
from ui.web.common import fmt_num, guard, settings, ui_defaults
from ui.web.components import empty_state, job_panel, scatter_chart, score_chart, score_rows
from ui.web.files import find_suites, short
from ui.web.i18n import lazy, t
from ui.web.model_text import label_text

if TYPE_CHECKING:
    from evaluation.results import RunResult

# Every registered strategy (route and delegate need a <base>+<adapter> model).
STRATEGIES = strategy_names()
cfg = settings()
st.title(t("eval.title"))
st.caption(t("eval.caption"))

run_tab, results_tab, compare_tab = st.tabs([t("eval.tab.run"), t("eval.tab.results"), t("eval.tab.compare")])


def _kbs() -> list[str]:
    from assistant.knowledge import KnowledgeBase

    return KnowledgeBase.list_all(cfg)


# ---- run ------------------------------------------------------------------------------------------
with run_tab:
    suites = [str(p) for p in find_suites(cfg)]
    if not suites:
        empty_state(t("eval.no_suites"))
    with st.form("eval_run"):
        suite = st.selectbox(t("eval.suite"), suites, format_func=short, index=0 if suites else None)
        other = st.text_input(t("eval.suite_path"), placeholder="suites/my_suite.yaml")
        c1, c2 = st.columns(2)
        strategies = c1.multiselect(t("eval.strategies"), STRATEGIES, default=["prompt"])
        kbs = _kbs()
        kb = c2.selectbox(t("eval.kb"), kbs, index=0 if kbs else None, placeholder=t("play.no_kb"))
        c1, c2, c3 = st.columns(3)
        model = c1.text_input(t("eval.model"), value=cfg.model)
        limit = c2.number_input(t("eval.limit"), 0, 100_000, 0, help=t("eval.limit_help"))
        no_judge = c3.checkbox(t("eval.no_judge"), value=True)
        judge = st.text_input(
            t("eval.judge"),
            value=str(ui_defaults(cfg).get("judge") or ""),
            placeholder=t("eval.judge_placeholder"),
        )
        start = st.form_submit_button(t("eval.start"), type="primary")
    if start:
        chosen = other.strip() or suite
        if not chosen:
            st.warning(t("eval.need_suite"))
        elif not strategies:
            st.warning(t("play.need_strategy"))
        else:
            params: dict[str, Any] = {
                "suite": chosen,
                "strategies": strategies,
                "model": model.strip() or None,
                "kb": kb,
                "limit": int(limit) or None,
                "no_judge": bool(no_judge),
                "judge": judge.strip() or None,
            }
            job = jobs.launch(cfg, "eval", params, lazy("eval.job_title", suite=short(chosen)))
            st.session_state["eval_job"] = job.job_id
    recent = jobs.list_jobs(cfg, "eval", limit=1)
    eval_job = job_panel(
        cfg, st.session_state.get("eval_job") or (recent[0].job_id if recent else None), "eval"
    )
    if eval_job is not None and eval_job.status == jobs.DONE:
        st.success(t("eval.done", run=eval_job.result.get("run_id", "")))
        st.session_state.setdefault("eval_show", eval_job.result.get("run_id"))


# ---- results --------------------------------------------------------------------------------------
def _runs() -> list[dict[str, Any]]:
    from evaluation.store import RunStore

    with RunStore(cfg.db_path) as store:
        return store.list_runs(limit=50)


def _load(run_id: str) -> RunResult:
    from evaluation.store import RunStore

    with RunStore(cfg.db_path) as store:
        return store.load_run(run_id)


def _run_label(row: dict[str, Any]) -> str:
    return f"{row['run_id'][-6:]} · {row['suite']} · {', '.join(row['strategies'])} · {row['status']}"


def _show(run: RunResult) -> None:
    from evaluation.report.common import (
        agreement_text,
        agreement_warns,
        higher_is_better,
        main_metric,
        worst_items,
    )

    st.caption(
        t(
            "eval.run_facts",
            suite=run.suite,
            model=run.model,
            judge=run.judge or t("eval.no_judge_short"),
            n=len(run.records),
            calls=run.model_calls,
            judge_calls=run.judge_calls or 0,
            seconds=f"{run.wall_s:.1f}",
        )
    )
    if run.suite_review:
        st.warning(t("eval.suite_unreviewed", note=run.suite_review))
    for label in run.judge_agreement:
        text = agreement_text(run, label) or ""
        if agreement_warns(run, label):
            st.warning(f"{label}: {text}")
        else:
            st.caption(f"{label}: {text}")
    if run.failures:
        for failure in run.failures:
            st.error(t("eval.threshold_missed", what=failure))
    elif run.thresholds:
        st.success(t("eval.thresholds_met"))
    st.dataframe(score_rows(run), hide_index=True, width="stretch")
    labels = list(dict.fromkeys(label for s in run.strategies for label in s.metrics))
    if labels:
        metric = st.selectbox(
            t("eval.chart_metric"), labels, index=labels.index(main_metric(run) or labels[0])
        )
        chart = score_chart(run, metric)
        if chart is not None:
            st.altair_chart(chart, width="stretch")
        import pandas as pd

        points = [
            {
                "strategy": s.strategy,
                metric: s.metrics[metric].mean,
                t("eval.cost_axis"): s.cost.cost_per_1k_questions,
            }
            for s in run.strategies
            if metric in s.metrics
            and s.metrics[metric].mean is not None
            and s.cost is not None
            and s.cost.cost_per_1k_questions is not None
        ]
        if points:
            st.caption(t("eval.cost_vs_score"))
            st.altair_chart(
                scatter_chart(pd.DataFrame(points), t("eval.cost_axis"), metric, "strategy"), width="stretch"
            )
    for comparison in run.comparisons:
        st.caption(
            f"{comparison.a} − {comparison.b} · {comparison.metric}: {fmt_num(comparison.diff)} "
            f"[{fmt_num(comparison.low, 2)}, {fmt_num(comparison.high, 2)}] p={fmt_num(comparison.p_value)}"
        )
    st.subheader(t("eval.worst"))
    main = main_metric(run)
    strategy_labels = [s.strategy for s in run.strategies]
    pick = st.selectbox(t("eval.col.strategy"), strategy_labels, key="eval_drill_strategy")
    if pick is None:
        return
    worst = worst_items(run.records_for(pick), main, 20, higher_is_better(run, main) if main else True)
    if not worst:
        empty_state(t("eval.no_records"))
    for rank, item in enumerate(worst, start=1):
        record = item.record
        value = fmt_num(item.value) if item.value is not None else f"n/a ({item.reason})"
        with st.expander(f"{rank}. {main}: {value} · {label_text(record.user_input[:80])}"):
            st.caption(t("eval.question"))
            st.text(record.user_input)
            st.caption(t("eval.answer"))
            st.text(record.response or "—")
            st.caption(t("eval.reference"))
            st.text(record.reference or "—")
            if record.retrieved_contexts:
                st.caption(t("eval.contexts"))
                for context in record.retrieved_contexts[:5]:
                    st.text(context[:1200])
            st.dataframe(
                [{"metric": k, "value": s.value, "n/a": s.reason} for k, s in record.scores.items()],
                hide_index=True,
            )


with results_tab, guard():
    runs = _runs()
    if not runs:
        empty_state(t("eval.no_runs"))
    else:
        ids = [row["run_id"] for row in runs]
        wanted = st.session_state.get("eval_show")
        index = ids.index(wanted) if wanted in ids else 0
        labels_by_id = {row["run_id"]: _run_label(row) for row in runs}
        run_id = st.selectbox(t("eval.pick_run"), ids, index=index, format_func=labels_by_id.__getitem__)
        if run_id:
            run = _load(run_id)
            if run.status != "complete":
                st.info(t("eval.not_complete", status=run.status, n=len(run.records)))
                if run.error:
                    st.error(run.error)
            else:
                _show(run)

# ---- compare --------------------------------------------------------------------------------------
with compare_tab, guard(t("eval.tab.compare")):
    runs = [row for row in _runs() if row["status"] == "complete"]
    if len(runs) < 2:
        empty_state(t("eval.need_two"))
    else:
        ids = [row["run_id"] for row in runs]
        labels_by_id = {row["run_id"]: _run_label(row) for row in runs}
        c1, c2 = st.columns(2)
        a_id = c1.selectbox(t("eval.run_a"), ids, index=0, format_func=labels_by_id.__getitem__)
        b_id = c2.selectbox(t("eval.run_b"), ids, index=1, format_func=labels_by_id.__getitem__)
        if a_id and b_id:
            from evaluation.aggregate import compare

            a, b = _load(a_id), _load(b_id)
            sa = c1.selectbox(t("eval.col.strategy"), [s.strategy for s in a.strategies], key="cmp_a")
            sb = c2.selectbox(t("eval.col.strategy"), [s.strategy for s in b.strategies], key="cmp_b")
            records_a, records_b = a.records_for(str(sa)), b.records_for(str(sb))
            shared = [
                m
                for m in dict.fromkeys(k for r in records_a for k in r.scores)
                if any(m in r.scores for r in records_b)
            ]
            if not shared:
                st.warning(t("eval.no_shared"))
            else:
                rows = []
                for c in compare(f"A:{sa}", f"B:{sb}", records_a, records_b, shared):
                    significant = c.p_value is not None and c.p_value < 0.05
                    rows.append(
                        {
                            "metric": c.metric,
                            "A − B": fmt_num(c.diff),
                            "95% CI": f"[{fmt_num(c.low, 2)}, {fmt_num(c.high, 2)}]",
                            "p": fmt_num(c.p_value),
                            "n": c.n,
                            t("eval.test"): c.test,
                            t("eval.reading"): t("eval.significant")
                            if significant
                            else t("eval.not_significant"),
                        }
                    )
                st.dataframe(rows, hide_index=True, width="stretch")
