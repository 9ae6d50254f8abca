"""Every visible string of the workbench and the chat app, in English and Chinese.

The strings are data: one YAML file per area beside this module (``app.yaml`` for the
navigation, login and jobs, then one per page), each mapping a key to its ``en`` and ``zh``
text. ``t(key, **values)`` picks the session's language (the sidebar switch; the
``language`` setting by default). A test checks that every key used in ``ui/`` is here in
both languages.
"""

from __future__ import annotations

from importlib import resources

import yaml

LANGUAGES = {"en": "English", "zh": "中文"}


def _load_strings() -> dict[str, tuple[str, str]]:
    """Every area's strings (each ``*.yaml`` here) as ``key -> (English, Chinese)``; a key in
    two files is a mistake."""
    strings: dict[str, tuple[str, str]] = {}
    areas = sorted(
        (f for f in resources.files(__name__).iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name
    )
    for area in areas:
        table = yaml.safe_load(area.read_text(encoding="utf-8")) or {}
        for key, texts in table.items():
            if key in strings:
                raise KeyError(f"string {key!r} is defined twice (again in {area.name})")
            strings[key] = (str(texts["en"]), str(texts["zh"]))
    return strings


STRINGS: dict[str, tuple[str, str]] = _load_strings()


def current_language() -> str:
    import streamlit as st

    lang = st.session_state.get("lang")
    return lang if lang in LANGUAGES else "en"


def t(key: str, **values: object) -> str:
    """The string for ``key`` in the session's language, with ``values`` filled in."""
    entry = STRINGS.get(key)
    if entry is None:
        return key
    text = entry[1] if current_language() == "zh" else entry[0]
    return text.format(**values) if values else text


def lazy(key: str, **values: object) -> dict[str, object]:
    """A string to translate when shown, not now (a job's title is read in any language)."""
    return {"key": key, "values": values}


def translate(text: str | dict[str, object]) -> str:
    if isinstance(text, dict):
        values = text.get("values")
        return t(str(text.get("key", "")), **(values if isinstance(values, dict) else {}))
    return text


def language_switch(default: str = "en") -> None:
    """The zh/en switch in the sidebar; the choice lives in the session."""
    import streamlit as st

    if st.session_state.get("lang") not in LANGUAGES:
        st.session_state["lang"] = default if default in LANGUAGES else "en"
    with st.sidebar:
        st.radio(
            STRINGS["app.language"][0] + " / " + STRINGS["app.language"][1],
            list(LANGUAGES),
            format_func=LANGUAGES.__getitem__,
            key="lang",
            horizontal=True,
        )
