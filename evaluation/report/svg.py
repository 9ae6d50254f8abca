"""Inline SVG charts drawn in Python, so the HTML report needs no script, font or network.

Bars are horizontal: strategy and subject names are long and read best on the left.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from evaluation.report.common import is_na, num

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH = 520
LABEL_W = 150
VALUE_W = 70
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass
class Bar:
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    color: str = PALETTE[0]


def _domain(values: list[float | None]) -> tuple[float, float]:
    known = [v for v in values if v is not None and not is_na(v)]
    lo, hi = min([0.0, *known]), max([0.0, *known])
    if lo >= 0 and hi <= 1:
        hi = 1.0  # scores in 0..1 are drawn on the full 0..1 scale, so charts compare at a glance
    return lo, hi if hi > lo else lo + 1


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _axis(x0: float, x1: float, lo: float, hi: float, y: float) -> list[str]:
    out = [f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" stroke="#999"/>']
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        x = x0 + (x1 - x0) * i / 4
        out.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 16:.1f}" text-anchor="middle" fill="#555">{value:.2f}</text>')
    return out


def bar_chart(title: str, bars: list[Bar], threshold: float | None = None) -> str:
    """One metric: a bar per strategy with its CI as a whisker, and the threshold as a line."""
    row_h, top = 28, 30
    height = top + row_h * len(bars) + 28
    x0, x1 = LABEL_W, WIDTH - VALUE_W
    lo, hi = _domain([v for b in bars for v in (b.value, b.low, b.high)] + [threshold])

    def x(value: float) -> float:
        return x0 + (x1 - x0) * (value - lo) / (hi - lo)

    out = [
        f'<svg class="chart" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" {FONT}>',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-weight="600" font-size="13">{escape(title)}</text>',
    ]
    for i, bar in enumerate(bars):
        y = top + i * row_h
        mid = y + row_h / 2 - 2
        out.append(
            f'<text x="{x0 - 8}" y="{mid + 4:.1f}" text-anchor="end"><title>{escape(bar.label)}</title>'
            f"{escape(_short(bar.label))}</text>"
        )
        if is_na(bar.value):
            out.append(f'<text x="{x0 + 4}" y="{mid + 4:.1f}" fill="#777">n/a</text>')
            continue
        assert bar.value is not None
        start, end = sorted((x(max(lo, 0.0)), x(bar.value)))
        out.append(
            f'<rect x="{start:.1f}" y="{y + 4}" width="{max(end - start, 1):.1f}" height="{row_h - 12}" '
            f'fill="{bar.color}" opacity="0.85"><title>{escape(bar.label)}: {num(bar.value)}</title></rect>'
        )
        if not (is_na(bar.low) or is_na(bar.high)):
            assert bar.low is not None and bar.high is not None
            a, b = x(bar.low), x(bar.high)
            out.append(f'<line x1="{a:.1f}" y1="{mid:.1f}" x2="{b:.1f}" y2="{mid:.1f}" stroke="#222"/>')
            for edge in (a, b):
                cap = f'x1="{edge:.1f}" y1="{mid - 5:.1f}" x2="{edge:.1f}" y2="{mid + 5:.1f}"'
                out.append(f'<line {cap} stroke="#222"/>')
        out.append(f'<text x="{x1 + 6}" y="{mid + 4:.1f}">{num(bar.value)}</text>')
    if threshold is not None and not is_na(threshold):
        tx = x(threshold)
        bottom = top + row_h * len(bars)
        out.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{bottom}" stroke="#C00" '
            f'stroke-dasharray="4 3"><title>threshold {num(threshold)}</title></line>'
        )
        out.append(
            f'<text x="{tx:.1f}" y="{top - 7}" text-anchor="middle" fill="#C00" font-size="11">'
            f"threshold {num(threshold)}</text>"
        )
    out += _axis(x0, x1, lo, hi, top + row_h * len(bars) + 2)
    out.append("</svg>")
    return "".join(out)


def grouped_chart(title: str, groups: list[str], series: list[tuple[str, list[float | None]]]) -> str:
    """One bar per (group, strategy): ``series`` is (strategy, value per group)."""
    bar_h = 9
    row_h = bar_h * len(series) + 8
    top = 46
    height = top + row_h * len(groups) + 28
    x0, x1 = LABEL_W, WIDTH - VALUE_W
    lo, hi = _domain([v for _, values in series for v in values])

    def x(value: float) -> float:
        return x0 + (x1 - x0) * (value - lo) / (hi - lo)

    out = [
        f'<svg class="chart" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" {FONT}>',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-weight="600" font-size="13">{escape(title)}</text>',
    ]
    legend_x = 0.0
    for s, (name, _) in enumerate(series):
        out.append(f'<rect x="{legend_x:.1f}" y="26" width="10" height="10" fill="{color(s)}"/>')
        out.append(f'<text x="{legend_x + 14:.1f}" y="35">{escape(_short(name, 18))}</text>')
        legend_x += 30 + 7 * len(_short(name, 18))
    for g, group in enumerate(groups):
        y = top + g * row_h
        out.append(
            f'<text x="{x0 - 8}" y="{y + row_h / 2 + 2:.1f}" text-anchor="end"><title>{escape(group)}</title>'
            f"{escape(_short(group))}</text>"
        )
        for s, (name, values) in enumerate(series):
            value = values[g]
            by = y + 4 + s * bar_h
            if is_na(value):
                continue
            assert value is not None
            start, end = sorted((x(max(lo, 0.0)), x(value)))
            out.append(
                f'<rect x="{start:.1f}" y="{by}" width="{max(end - start, 1):.1f}" height="{bar_h - 2}" '
                f'fill="{color(s)}"><title>{escape(group)} / {escape(name)}: {num(value)}</title></rect>'
            )
        if g:
            out.append(f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#eee"/>')
    out += _axis(x0, x1, lo, hi, top + row_h * len(groups) + 2)
    out.append("</svg>")
    return "".join(out)


@dataclass
class Point:
    label: str
    x: float
    y: float
    color: str = PALETTE[0]


def scatter_chart(
    title: str, points: list[Point], x_label: str, y_label: str, y_threshold: float | None = None
) -> str:
    """Labelled points (e.g. cost against score), with an optional horizontal threshold line."""
    height, left, right, top, bottom = 300, 56, WIDTH - 20, 30, 300 - 44
    xs, ys = [p.x for p in points], [p.y for p in points] + ([y_threshold] if y_threshold is not None else [])
    x_lo, x_hi = 0.0, max([*xs, 0.0]) * 1.1 or 1.0
    y_lo, y_hi = _domain(list(ys))

    def px(value: float) -> float:
        return left + (right - left) * (value - x_lo) / (x_hi - x_lo)

    def py(value: float) -> float:
        return bottom - (bottom - top) * (value - y_lo) / (y_hi - y_lo)

    out = [
        f'<svg class="chart" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" {FONT}>',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-weight="600" font-size="13">{escape(title)}</text>',
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#999"/>',
        f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#555">'
        f"{escape(x_label)}</text>",
        f'<text x="12" y="{(top + bottom) / 2:.1f}" text-anchor="middle" fill="#555" '
        f'transform="rotate(-90 12 {(top + bottom) / 2:.1f})">{escape(y_label)}</text>',
    ]
    for i in range(5):
        xv, yv = x_lo + (x_hi - x_lo) * i / 4, y_lo + (y_hi - y_lo) * i / 4
        out.append(
            f'<text x="{px(xv):.1f}" y="{bottom + 16}" text-anchor="middle" fill="#555">{xv:.3g}</text>'
        )
        out.append(f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end" fill="#555">{yv:.2f}</text>')
    if y_threshold is not None and not is_na(y_threshold):
        ty = py(y_threshold)
        out.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" stroke="#C00" '
            'stroke-dasharray="4 3">'
            f"<title>target {num(y_threshold)}</title></line>"
        )
    for point in points:
        x, y = px(point.x), py(point.y)
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{point.color}"><title>{escape(point.label)}: '
            f"{point.x:.4g}, {num(point.y)}</title></circle>"
        )
        out.append(f'<text x="{x + 8:.1f}" y="{y - 6:.1f}">{escape(_short(point.label, 16))}</text>')
    out.append("</svg>")
    return "".join(out)
