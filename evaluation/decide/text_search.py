"""The rung search in words and as a table (en, zh): what each searched rung tried on its tuning
slice, what it chose, and how the choice did on the dev items it never saw."""

from __future__ import annotations

from typing import Any

from evaluation.decide.result import Decision, RungResult
from evaluation.decide.search import RungSearch, SliceSearch

HEADERS = {
    "en": ["rung", "slice", "#", "configuration", "tuning score", "model calls", "seconds", ""],
    "zh": ["级", "切片", "#", "配置", "调参得分", "模型调用", "秒", ""],
}
TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "changed": "{rung} got its best shot: {attempts} configurations of {knobs} tried on {tuning} dev "
        "items ({sampler}); chose {chosen}. On the other {rest} dev items, which the choice never saw: "
        "{scores}. The rung is judged there.",
        "kept": "{rung} got its best shot: {attempts} configurations of {knobs} tried on {tuning} dev items "
        "({sampler}); none beat the configuration as written, so its dev result stands.",
        "not_split": "{rung}: not searched ({note}).",
        "stopped": "{rung}: the search stopped early: {note}.",
        "stable": "Searched on {slices} differently seeded tuning slices, {rung} gets the same verdict "
        "on every one ({verdicts}): the choice does not hang on a lucky slice.",
        "unstable": "Searched on {slices} differently seeded tuning slices, {rung}'s verdict changes "
        "with the slice ({verdicts}): the result hangs on which items were tuned on; more dev items "
        "would settle it.",
        "meets": "meets",
        "misses": "misses",
        "as_written": "as written",
        "chosen": "chosen",
    },
    "zh": {
        "changed": "{rung} 已尽其所能：在 {tuning} 道开发题上试了 {knobs} 的 {attempts} 种配置（{sampler}），"
        "选中 {chosen}。在选择时从未用过的其余 {rest} 道开发题上：{scores}。该级以这部分结果评判。",
        "kept": "{rung} 已尽其所能：在 {tuning} 道开发题上试了 {knobs} 的 {attempts} 种配置（{sampler}），"
        "没有一种胜过原配置，因此保留其开发集结果。",
        "not_split": "{rung}：未搜索（{note}）。",
        "stopped": "{rung}：搜索提前结束：{note}。",
        "stable": "在 {slices} 个不同种子的调参切片上搜索，{rung} 的结论每次相同（{verdicts}）："
        "选择不依赖某个幸运的切片。",
        "unstable": "在 {slices} 个不同种子的调参切片上搜索，{rung} 的结论随切片而变（{verdicts}）："
        "结果取决于用哪些题调参；更多开发题才能定论。",
        "meets": "达标",
        "misses": "未达标",
        "as_written": "原配置",
        "chosen": "选中",
    },
}


def knobs_text(knobs: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if v is None:
            return "none"
        return f'"{v}"' if isinstance(v, str) and (" " in v or not v.isascii()) else str(v)

    return ", ".join(f"{k}={value(v)}" for k, v in knobs.items())


def _scores(found: SliceSearch, t: dict[str, str]) -> str:
    parts = []
    for metric, given in found.given_rest.items():
        chosen = found.chosen_rest.get(metric)
        parts.append(f"{metric} {_num(given)} ({t['as_written']}) → {_num(chosen)} ({t['chosen']})")
    return "; ".join(parts)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def rung_lines(rung: RungResult, lang: str) -> list[str]:
    found: RungSearch | None = rung.search
    if found is None:
        return []
    t = TEMPLATES.get(lang, TEMPLATES["en"])
    if not found.slices:
        return [t["not_split"].format(rung=rung.label, note=found.note)] if found.note else []
    first = found.slices[0]
    params = {
        "rung": rung.label,
        "attempts": len(first.attempts),
        "knobs": ", ".join(found.knobs),
        "tuning": first.tuning,
        "rest": first.rest,
        "sampler": "grid" if found.sampler == "grid" else "Optuna TPE",
        "chosen": knobs_text(first.chosen),
        "scores": _scores(first, t),
    }
    lines = [t["changed" if found.changed else "kept"].format(**params)]
    if found.note:
        lines.append(t["stopped"].format(rung=rung.label, note=found.note))
    if found.stable is not None:
        verdicts = ", ".join(t["meets"] if s.meets else t["misses"] for s in found.slices)
        key = "stable" if found.stable else "unstable"
        lines.append(t[key].format(rung=rung.label, slices=len(found.slices), verdicts=verdicts))
    return lines


def search_lines(decision: Decision, lang: str) -> list[str]:
    return [line for rung in decision.rungs for line in rung_lines(rung, lang)]


def search_table(decision: Decision, lang: str) -> tuple[list[str], list[list[str]]]:
    """Every attempt of every searched rung: configuration, tuning-slice score, cost."""
    t = TEMPLATES.get(lang, TEMPLATES["en"])
    rows = []
    for rung in decision.rungs:
        if rung.search is None:
            continue
        for index, found in enumerate(rung.search.slices, start=1):
            for a in found.attempts:
                marks = [t["as_written"]] if a.given else []
                marks += [t["chosen"]] if a.chosen else []
                score = "; ".join(f"{m} {_num(v)}" for m, v in a.means.items())
                rows.append(
                    [
                        rung.label,
                        f"{index} (seed {found.seed}, {found.tuning}/{found.rest})",
                        str(a.number),
                        knobs_text(a.knobs),
                        score,
                        str(a.model_calls),
                        f"{a.seconds:.1f}",
                        ", ".join(marks),
                    ]
                )
    return list(HEADERS.get(lang, HEADERS["en"])), rows
