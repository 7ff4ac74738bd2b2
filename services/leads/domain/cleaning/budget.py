"""Budgets: free text (20-30万, 25w左右, 二十万, 1-2k, 面议) into a range in CNY.

Rules: a range keeps its ends (swapped if reversed); an approximate value (左右, 约, 上下) is widened by
±`around`; 以内/以下/不超过 gives 0..v, 以上/起/至少 gives v..open; "20多万"/"十几万" gives the decade
(200000..300000, 100000..200000), "1万多" the unit (10000..20000); a bare number is one value. Units: 万/w
(10 000), 千/k (1 000), 百; a colloquial tail counts in the next lower unit (一万五 = 15000, 2万5 = 25000).
The left end of a range inherits the right end's unit (20-30万, 30-20万) unless that would put it more
than ten times above the right end (5000-2万). Numbers without any unit are yuan, unless `bare_unit` says otherwise for small numbers.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from services.leads.domain.cleaning.change import Change

UNITS = {"万": 10_000, "w": 10_000, "千": 1_000, "k": 1_000, "百": 100}
CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_POWERS = {"十": 10, "百": 100, "千": 1_000}
NEGOTIABLE = ("面议", "待定", "未定", "看情况", "没想好", "不确定", "再说", "商量", "tbd")
UNLIMITED = ("不限", "无所谓", "都可以", "随便", "不差钱", "无上限", "没预算", "不设限")
AROUND = ("左右", "上下", "前后", "大概", "大约", "差不多", "约", "~")
UPPER = ("以内", "以下", "之内", "不超过", "最多", "封顶", "不到", "以里", "内", "<=", "<", "≤")
LOWER = ("以上", "起步", "至少", "最少", "不低于", "起", ">=", ">", "≥", "+")
NOISE = ("人民币", "块钱", "预算", "budget", "rmb", "cny", "元", "块", "¥", "$", ",", ":", "(", ")")
SEPARATORS = ("-", "~", "到", "至", "—", "–")
AMOUNT = re.compile(
    r"(?P<num>\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+)(?P<fuzzy>多|几)?(?P<unit>万|w|千|k|百)?"
    r"(?P<tail>[一二两三四五六七八九1-9](?![\d.万w千k百多]))?(?P<more>多)?"
)
MAX_CNY = 1_000_000_000
INHERIT_FACTOR = 10  # 5000-2万: 5000万 would be far above the right end, so 5000 stays yuan


@dataclass(frozen=True)
class BudgetRules:
    around: float = 0.10  # ± for 25万左右
    bare_unit: int = 1  # multiplier for unit-less numbers below `bare_below` (10_000 where 预算25 means 25万)
    bare_below: int = 1_000


@dataclass(frozen=True)
class BudgetResult:
    low: int | None
    high: int | None  # None: no upper bound
    changes: tuple[Change, ...] = ()
    problem: str | None = None  # unparseable_budget | implausible_budget


@dataclass(frozen=True)
class _Amount:
    value: float
    unit: int | None
    span: float  # width of a fuzzy amount (多, 几), else 0
    chinese: bool


def _cn_number(text: str) -> float | None:
    """一百五 → 150, 二十 → 20, 十 → 10, 两千 → 2000; None if not a numeral."""
    total, digit, last_power = 0, None, 0
    for ch in text:
        if ch in CN_DIGITS:
            if digit is not None:
                return None
            digit = CN_DIGITS[ch]
        elif ch in CN_POWERS:
            power = CN_POWERS[ch]
            if last_power and power >= last_power:
                return None
            total += (1 if digit is None else digit) * power
            digit, last_power = None, power
        else:
            return None
    if digit is not None:
        total += digit * (last_power // 10 if last_power >= 100 else 1)
    return float(total)


def _amount(m: re.Match[str]) -> _Amount | None:
    num = m["num"]
    chinese = not num[0].isdigit()
    value = _cn_number(num) if chinese else float(num)
    if value is None:
        return None
    unit = UNITS[m["unit"]] if m["unit"] else None
    span = 0.0
    if m["fuzzy"]:
        span = 10.0 if value % 10 == 0 and value > 0 else 1.0
    if m["tail"]:
        if unit is None or unit == 100:
            return None
        tail = CN_DIGITS.get(m["tail"], None)
        tail = int(m["tail"]) if tail is None else tail
        value += tail / 10
    if m["more"]:
        if unit is None or span:
            return None
        span = 1.0
    return _Amount(value, unit, span, chinese)


def format_budget(low: int | None, high: int | None) -> str | None:
    """A budget range as text that parse_budget reads back to the same range."""
    if low is None:
        return None
    if high is None:
        return f"{low}以上"
    return str(low) if low == high else f"{low}-{high}"


def _strip(text: str, words: tuple[str, ...]) -> tuple[str, bool]:
    found = False
    for word in words:
        if word in text:
            text, found = text.replace(word, " "), True
    return text, found


def parse_budget(raw: str | int | float | None, rules: BudgetRules = BudgetRules()) -> BudgetResult:
    """The budget range in CNY, with why; never raises."""
    if raw is None or isinstance(raw, bool):
        return BudgetResult(None, None)
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or raw < 0:
            return BudgetResult(None, None, (), "unparseable_budget")
        raw = format(raw, "f").rstrip("0").rstrip(".") if isinstance(raw, float) else str(raw)
    if not isinstance(raw, str):
        return BudgetResult(None, None, (), "unparseable_budget")
    text = unicodedata.normalize("NFKC", raw).casefold()
    text = re.sub(r"\s+", "", text).replace("～", "~").replace("〜", "~")
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 200,000
    if not text:
        return BudgetResult(None, None)

    def done(low: float | None, high: float | None, *reasons: str) -> BudgetResult:
        lo = None if low is None else int(round(low))
        hi = None if high is None else int(round(high))
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
            reasons += ("range_swapped",)
        if (lo is not None and lo > MAX_CNY) or (hi is not None and hi > MAX_CNY):
            return BudgetResult(None, None, (), "implausible_budget")
        after = format_budget(lo, hi)
        changes = () if after == raw else tuple(Change("budget", r, raw, after) for r in dict.fromkeys(reasons))
        return BudgetResult(lo, hi, changes)

    if not AMOUNT.search(text):
        if any(w in text for w in UNLIMITED):
            return BudgetResult(None, None, (Change("budget", "budget_unlimited", raw, None),))
        if any(w in text for w in NEGOTIABLE):
            return BudgetResult(None, None, (Change("budget", "budget_negotiable", raw, None),))
        return BudgetResult(None, None, (), "unparseable_budget")

    matches = list(AMOUNT.finditer(text))
    amounts = [_amount(m) for m in matches]
    if not 1 <= len(matches) <= 2 or any(a is None for a in amounts):
        return BudgetResult(None, None, (), "unparseable_budget")
    # Whatever is not an amount must be a known marker, separator or noise.
    rest = [text[: matches[0].start()], text[matches[-1].end():]]
    between = text[matches[0].end(): matches[1].start()] if len(matches) == 2 else ""
    if len(matches) == 2 and between not in SEPARATORS:
        return BudgetResult(None, None, (), "unparseable_budget")
    residue = " ".join(rest)
    residue, _ = _strip(residue, NOISE)
    residue, around = _strip(residue, AROUND)
    residue, upper = _strip(residue, UPPER)
    residue, lower = _strip(residue, LOWER)
    if residue.strip() or (upper and lower):
        return BudgetResult(None, None, (), "unparseable_budget")

    reasons: list[str] = []
    if any(a.chinese for a in amounts):
        reasons.append("chinese_numerals")
    if all(a.unit is None for a in amounts) and all(a.value < rules.bare_below for a in amounts) and rules.bare_unit != 1:
        amounts = [_Amount(a.value, rules.bare_unit, a.span, a.chinese) for a in amounts]
        reasons.append("unit_assumed")
    if len(amounts) == 2:
        left, right = amounts
        right_unit = right.unit or 1
        high = (right.value + right.span) * right_unit
        inherits = left.unit is None and left.value * right_unit <= INHERIT_FACTOR * high
        low = left.value * (left.unit or (right_unit if inherits else 1))
        if upper or lower:
            return BudgetResult(None, None, (), "unparseable_budget")
        return done(low, high, "range_parsed", *reasons)
    (a,) = amounts
    unit = a.unit or 1
    value, span = a.value * unit, a.span * unit
    if upper:
        return done(0, value + span, "upper_bound", *reasons)
    if lower:
        return done(value, None, "lower_bound", *reasons)
    if span:
        return done(value, value + span, "approximate_range", *reasons)
    if around:
        return done(value * (1 - rules.around), value * (1 + rules.around), "approximate_widened", *reasons)
    return done(value, value, "single_value", *reasons)
