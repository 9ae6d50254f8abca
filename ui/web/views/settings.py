"""Settings: model packs (pull with progress, remove), backends and endpoints, the default
judge, decision targets, the price table, the workbench password, and every setting with
where its value comes from. Values are written to ladder.yaml, the file the CLI reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from ui.auth import MIN_LENGTH, hash_password, password_problem, write_setting
from ui.web import jobs
from ui.web.common import config_file, guard, save_ui_defaults, settings, ui_defaults, ui_dir
from ui.web.components import job_panel
from ui.web.i18n import lazy, t
from ui.web.login import locked_message, renew, verify_current_password

cfg = settings()
path = config_file()
st.title(t("set.title"))
st.caption(t("set.caption", path=str(path.resolve())))
models_tab, backend_tab, eval_tab, security_tab, all_tab = st.tabs(
    [
        t("set.tab.models"),
        t("set.tab.backends"),
        t("set.tab.evaluation"),
        t("set.tab.security"),
        t("set.tab.all"),
    ]
)


def _save(values: dict[str, Any]) -> None:
    """Write changed values to ladder.yaml; warn where an environment variable still wins."""
    with guard(t("set.save")):
        for key, value in values.items():
            write_setting(path, key, value)
        from assistant.settings import load_settings

        fresh = load_settings()  # validates the file as the CLI will read it
        overridden = [k for k in values if fresh.sources.get(k) in ("env", "flag")]
        st.success(t("set.saved", path=str(path)))
        if overridden:
            st.warning(t("set.overridden", keys=", ".join(overridden)))


# ---- model packs ----------------------------------------------------------------------------------
with models_tab, guard():
    from assistant.models.catalog import load_catalog
    from assistant.models.pull import installed_pack_dir

    catalog = load_catalog(cfg.catalog_file)
    st.dataframe(
        [
            {
                t("set.col.pack"): spec.name,
                t("set.col.kind"): spec.kind,
                t("set.col.installed"): "✓" if installed_pack_dir(spec.name, cfg) else "—",
                t("set.col.size"): f"{spec.size_bytes / 1e6:.0f} MB",
                t("set.col.languages"): ", ".join(spec.languages),
                t("set.col.licence"): spec.license,
            }
            for spec in catalog.values()
        ],
        hide_index=True,
        width="stretch",
    )
    pack = st.selectbox(t("set.pack"), list(catalog), key="set_pack")
    c1, c2, c3 = st.columns(3)
    if c1.button(t("set.pull"), disabled=bool(jobs.active(cfg, "pull"))) and pack:
        job = jobs.launch(cfg, "pull", {"name": pack}, lazy("set.pull_job", name=pack))
        st.session_state["set_pull_job"] = job.job_id
    if c2.button(t("set.make_default")) and pack:
        # An embedder pack becomes the embedding model of new knowledge bases, a language model the model.
        _save({"embedding_model": pack} if catalog[pack].kind == "embedder" else {"model": pack})
    if c3.button(t("set.remove")) and pack:
        from assistant.models.pull import remove_pack

        st.info(t("set.removed", name=pack) if remove_pack(pack, cfg) else t("set.not_installed", name=pack))
    recent = jobs.list_jobs(cfg, "pull", limit=1)
    job_panel(cfg, st.session_state.get("set_pull_job") or (recent[0].job_id if recent else None), "pull")

# ---- backends and endpoints -----------------------------------------------------------------------
with backend_tab, st.form("set_backend"):
    model = st.text_input(t("set.model"), value=cfg.model, help=t("set.model_help"))
    c1, c2 = st.columns(2)
    base_url = c1.text_input(
        t("set.base_url"), value=cfg.openai_base_url or "", placeholder="http://gpu-box:8000/v1"
    )
    api_key = c2.text_input(t("set.api_key"), value="", type="password", help=t("set.api_key_help"))
    c1, c2, c3, c4 = st.columns(4)
    timeout = c1.number_input(t("set.timeout"), 1.0, 3600.0, float(cfg.request_timeout_s))
    retries = c2.number_input(t("set.retries"), 0, 20, int(cfg.max_retries))
    concurrency = c3.number_input(t("set.concurrency"), 1, 256, int(cfg.max_concurrency))
    threads = c4.number_input(t("set.threads"), 1, 512, int(cfg.threads))
    language = st.selectbox(t("set.language"), ["en", "zh"], index=["en", "zh"].index(cfg.language))
    if st.form_submit_button(t("set.save"), type="primary"):
        values: dict[str, Any] = {
            "model": model.strip() or None,
            "openai_base_url": base_url.strip() or None,
            "request_timeout_s": float(timeout),
            "max_retries": int(retries),
            "max_concurrency": int(concurrency),
            "threads": int(threads),
            "language": language,
        }
        if api_key.strip():
            values["openai_api_key"] = api_key.strip()
        _save(values)

# ---- judge, targets, prices -----------------------------------------------------------------------
with eval_tab:
    defaults = ui_defaults(cfg)
    with st.form("set_eval"):
        judge = st.text_input(
            t("set.judge"), value=str(defaults.get("judge") or ""), help=t("set.judge_help")
        )
        targets = st.text_area(
            t("set.targets"),
            value=str(defaults.get("targets") or 'token_f1: ">= 0.6"\n'),
            help=t("set.targets_help"),
            height=100,
        )
        price_path = Path(cfg.price_table) if cfg.price_table else ui_dir(cfg) / "prices.yaml"
        prices = st.text_area(
            t("set.prices"),
            value=price_path.read_text(encoding="utf-8")
            if price_path.is_file()
            else 'currency: USD\nprices:\n  - match: "*"\n    compute_per_hour: 0.10\n',
            help=t("set.prices_help"),
            height=160,
        )
        if st.form_submit_button(t("set.save"), type="primary"):
            with guard(t("set.save")):
                import yaml

                parsed = yaml.safe_load(targets) or {}
                if not isinstance(parsed, dict):
                    raise ValueError(t("set.targets_bad"))
                save_ui_defaults(cfg, judge=judge.strip() or None, targets=targets)
                price_path.parent.mkdir(parents=True, exist_ok=True)
                price_path.write_text(prices, encoding="utf-8")
                from evaluation.metrics.cost import load_price_table

                load_price_table(price_path)  # refuse a table the runner would refuse
                _save({"price_table": str(price_path)})


# ---- password -------------------------------------------------------------------------------------
def _current_password_ok(password: str) -> bool:
    """The current password, when there is one, counted like a sign-in try (so this form
    cannot be used to guess it faster than the sign-in page)."""
    if not cfg.ui_password_hash:
        return True
    ok, wait_s = verify_current_password(cfg, password)
    if not ok:
        st.error(locked_message(wait_s) if wait_s > 0 else t("set.current_wrong"))
    return ok


with security_tab:
    st.caption(t("set.password_state_on") if cfg.ui_password_hash else t("set.password_state_off"))
    with st.form("set_password", clear_on_submit=True):
        current = (
            st.text_input(t("set.current_password"), type="password", key="set_pw_current")
            if cfg.ui_password_hash
            else ""
        )
        first = st.text_input(t("set.new_password", n=MIN_LENGTH), type="password", key="set_pw_new")
        second = st.text_input(t("set.repeat_password"), type="password", key="set_pw_repeat")
        if st.form_submit_button(t("set.set_password")):
            problem = password_problem(first)
            if first != second:
                st.error(t("set.password_mismatch"))
            elif problem is not None:
                st.error(t("set.weak." + problem, n=MIN_LENGTH))
            elif _current_password_ok(current):
                with guard(t("set.set_password")):
                    new_hash = hash_password(first)
                    _save({"ui_password_hash": new_hash})
                    if settings().ui_password_hash == new_hash:  # saved, and no variable overrides it
                        renew(cfg, "workbench", new_hash)  # this session stays signed in
    if cfg.ui_password_hash:
        with st.form("clear_password", clear_on_submit=True):
            current = st.text_input(t("set.current_password"), type="password", key="set_pw_clear")
            if st.form_submit_button(t("set.clear_password")) and _current_password_ok(current):
                _save({"ui_password_hash": None})

# ---- everything -----------------------------------------------------------------------------------
with all_tab:
    items = cfg.public_items()
    st.dataframe(
        [
            {
                t("set.col.setting"): k,
                t("set.col.value"): json.dumps(v, default=str, ensure_ascii=False),
                t("set.col.source"): cfg.sources.get(k, "default"),
            }
            for k, v in items.items()
        ],
        hide_index=True,
        width="stretch",
    )
