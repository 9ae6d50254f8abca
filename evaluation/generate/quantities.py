"""Numbers with their units in a generated question or answer, and whether they contradict.

A small generator writes fluent items whose numbers are wrong: a multi-hop item asked
"自签收之日起 30 天内…可无理由退货？" and answered "15 天，因为入职满五年后…" (the 15 days of
annual leave, from the other passage). ``quantities`` reads "30 天", "三十天", "15 days" and
"30%" as ``(30, "天")``, ``(30, "天")``, ``(15, "day")`` and ``(30, "%")``, so a question and an
answer, or a reference and a second answer, can be compared number by number.

The rule (``contradicts_question``): a number the question states with a unit must not be
replaced in the answer by a different number with the same unit, unless the passages say so:
- the question asks for an amount ("多少", "几", "how many", "when", ...) and the answer's
  number with that unit is in the passages (the question's number was a premise: "一笔 150 元
  的订单运费是多少？" answered "15 元"), or
- one sentence of the passages states both numbers with that unit ("入职满一年后 10 天…满五年后
  15 天"), so the answer may name the other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# Units are read after a number: a CJK character (two for 个月, 小时, 工作日-style words starting
# with a measure word), a Latin word, or a percent sign.
_TWO_CHAR_UNITS = frozenset("个小工")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}  # fmt: skip
_CN_SCALES = {"十": 10, "百": 100, "千": 1000, "万": 10_000}
# A Chinese numeral counts only before one of these (else 一 in 统一 or 一线城市 would be a number).
_CN_UNITS = "天日年月周个小工岁元块次张倍分秒点号名位人家项条级层件台米克斤里%"
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_NUMBER = re.compile(
    rf"(?P<arabic>\d+(?:[.,]\d+)*)\s*(?P<unit>%|[{_CJK}]{{1,2}}|[a-z]+)?"
    rf"|(?P<chinese>[零〇一二两三四五六七八九十百千万]+)(?P<cn_unit>[{_CN_UNITS}][{_CJK}]?)"
)
_SENTENCE_END = re.compile(r"[。！？!?\n]|\.\s")

# Words that ask for an amount, a time or a date: the question's own number is then a premise.
_ASKS_AMOUNT = re.compile(
    r"多少|几|多久|多长|多大|多高|多远|多重|何时|什么时候|哪天|哪一天|哪年|哪一年|哪个月|什么时间|"
    r"上限|下限|金额|费用|价格|运费|期限|总共|一共|合计|相差"
    r"|\bhow (?:many|much|long|old|far|soon|often|late|early)\b|\bwhen\b"
    r"|\bwhat (?:time|date|day|year|percentage|amount|number)\b"
    r"|\b(?:price|fee|cost|limit|rate|deadline|amount|total|sum)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, order=True)
class Quantity:
    value: float
    unit: str  # "" when none follows the number


def _chinese_value(text: str) -> int:
    """十五 -> 15, 三十 -> 30, 六百 -> 600, 一千二百 -> 1200, 两 -> 2, 二〇二四 -> 2024."""
    total = section = 0
    digit: int | None = None
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch] if digit is None else digit * 10 + _CN_DIGITS[ch]  # 二〇二四
        elif ch == "万":
            total += (section + (digit or 0)) * 10_000
            section, digit = 0, None
        else:
            section += (1 if digit is None else digit) * _CN_SCALES[ch]
            digit = None
    return total + section + (digit or 0)


def _unit(raw: str | None) -> str:
    if not raw:
        return ""
    if raw[0] in _TWO_CHAR_UNITS:
        return raw[:2]
    if re.match(rf"[{_CJK}]", raw):
        return raw[0]
    if raw.endswith("s") and not raw.endswith("ss") and len(raw) > 3:
        return raw[:-1]  # days -> day, hours -> hour; yuan, %, kg stay
    return raw


def quantities(text: str) -> list[Quantity]:
    """Every number in ``text`` with the unit written after it (NFKC first: full-width digits count)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    found = []
    for match in _NUMBER.finditer(text):
        if match.group("arabic"):
            raw = match.group("arabic").replace(",", "")
            try:
                value = float(raw)
            except ValueError:  # "1.2.3": a version or a clause number, not a quantity
                continue
            found.append(Quantity(value, _unit(match.group("unit"))))
        else:
            found.append(
                Quantity(float(_chinese_value(match.group("chinese"))), _unit(match.group("cn_unit")))
            )
    return found


def by_unit(found: Sequence[Quantity]) -> dict[str, set[float]]:
    """Values by unit, numbers without a unit left out."""
    units: dict[str, set[float]] = {}
    for quantity in found:
        if quantity.unit:
            units.setdefault(quantity.unit, set()).add(quantity.value)
    return units


def asks_for_amount(question: str) -> bool:
    """Whether the question asks for a number, a time or a date ("多少天", "how many", "when")."""
    return bool(_ASKS_AMOUNT.search(unicodedata.normalize("NFKC", question)))


def _sentences(passages: Sequence[str]) -> list[dict[str, set[float]]]:
    return [by_unit(quantities(s)) for p in passages for s in _SENTENCE_END.split(p) if s.strip()]


def contradicts_question(question: str, answer: str, passages: Sequence[str]) -> bool:
    """The answer replaces a number the question states with another of the same unit, and the
    passages do not say so (the rule in this module's docstring)."""
    asked, answered = by_unit(quantities(question)), by_unit(quantities(answer))
    sentences: list[dict[str, set[float]]] | None = None
    for unit, values in asked.items():
        given = answered.get(unit)
        if not given or given & values:
            continue
        sentences = _sentences(passages) if sentences is None else sentences
        in_passages = set().union(*(s.get(unit, set()) for s in sentences))
        if asks_for_amount(question) and given <= in_passages:
            continue
        if any(values & s.get(unit, set()) and given & s.get(unit, set()) for s in sentences):
            continue
        return True
    return False


def numbers_disagree(reference: str, second: str) -> bool:
    """Numbers must agree: the reference states some and the second answer none, or they share
    no value, or a unit both use has no value in common ("15 天" against "30 天"), or the first
    amount of a unit in one is not among the other's amounts of that unit ("9 元，因为每箱每小时
    9 元" against "42 元，因为每箱每小时 9 元": an answer leads with its amount; the reasons after it
    may repeat the other's)."""
    ours, theirs = quantities(reference), quantities(second)
    if not ours:
        return False
    if not theirs or not {q.value for q in ours} & {q.value for q in theirs}:
        return True
    mine, other = by_unit(ours), by_unit(theirs)
    if any(not (values & other[unit]) for unit, values in mine.items() if unit in other):
        return True
    return _leading_differs(ours, other) or _leading_differs(theirs, mine)


def _leading_differs(found: Sequence[Quantity], other: dict[str, set[float]]) -> bool:
    """The first amount of some unit in ``found`` is not among ``other``'s amounts of that unit."""
    first: dict[str, float] = {}
    for quantity in found:
        if quantity.unit:
            first.setdefault(quantity.unit, quantity.value)
    return any(unit in other and value not in other[unit] for unit, value in first.items())


__all__ = ["Quantity", "asks_for_amount", "by_unit", "contradicts_question", "numbers_disagree", "quantities"]
