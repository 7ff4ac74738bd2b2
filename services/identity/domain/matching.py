"""Probabilistic person matching for persons who share no strong identifier (pure: no I/O, no clock).

Deterministic stitching (stitching.py) links persons through a shared phone, unionid, e-mail... This
module scores the rest: two profiles (name, birth date, city, address, e-mail local part) that may
describe the same human. It gives
- `profile_of`: a cleaned `Profile` from a touchpoint's attributes, or None when there is too little;
- `blocking_keys`: short keys; only profiles sharing a key are compared (the caller HMACs them);
- `score`: a Fellegi–Sunter match score in [0, 1], with per-field levels, similarities and weights;
- `decide`: merge / review / none under a `MatchPolicy`.

The model. Each field is compared at a few agreement levels. For each level, m is the probability of
that level when both records are the same person and u when they are two different persons (both
only over pairs where the field is present on both sides). The level's weight is log2(m/u) bits; a
field missing on either side weighs 0. The score is the logistic of the prior log2 odds plus the
summed weights: the posterior probability of a match under conditional independence. The prior is
the odds that two records of the tenant picked at random are one person (`prior_log2_odds`): the
larger the customer base, the more agreement a merge needs. Weights and reasons are in `MU`.
docs/identity-matching.md has the measured precision and recall.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property, lru_cache
from itertools import islice, permutations, product
from typing import Any, Literal

import jellyfish
from pypinyin import Style, pinyin
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

# ---- the model ------------------------------------------------------------------------------------

# field → level → (m, u). m: P(level | same person); u: P(level | two different persons); both given
# that the field is present on both sides. Within a field the m's (and the u's) sum to about 1, except
# for the e-mail, whose one agreement level is split by what the shared value looks like.
MU: Mapping[str, Mapping[str, tuple[float, float]]] = {
    # Chinese names in characters on both sides. Few distinct names: in a regional customer base about
    # 1 pair in 500 of different persons shares the exact name (张伟, 王芳...), so exact agreement is
    # worth only ~8.7 bits. "homophone": other characters with the same toneless pinyin, heteronyms
    # included (an IME slip 张伟/张玮, 曾/增); as rare among different persons as the exact name.
    "name_han": {"exact": (0.85, 0.002), "homophone": (0.10, 0.002), "disagree": (0.05, 0.996)},
    # A Chinese name romanised on at least one side (张伟 / "Zhang Wei" / "wei zhang"): characters
    # cannot agree, so the best level is the same pinyin, which more names share (homophones: u 0.005).
    # "similar": the spellings are one edit apart (a typo in the romanisation).
    "name_pinyin": {"phonetic": (0.90, 0.005), "similar": (0.05, 0.02), "disagree": (0.05, 0.975)},
    # Other Latin-script names: given names and surnames are far more diverse, so an exact full name
    # is rarer among different persons (~1e-4). "phonetic": every part within a typo or the same
    # NYSIIS code. "missing": one side lacks a part and the parts present agree; a part goes missing
    # as often for two persons as for one (~3%), so the weight is that of the surname agreeing (~1 in
    # 200). "partial": one part agrees and another differs, as for a relative.
    "name_latin": {"exact": (0.70, 1e-4), "phonetic": (0.16, 1e-3), "missing": (0.03, 1.5e-4),
                   "partial": (0.07, 0.015), "disagree": (0.04, 0.984)},
    # Birth dates: one day among ~30 adult years (u ~ 1e-4). A transposed day/month is as specific
    # as an exact date but rare among matches; one mistyped digit has ~20 valid neighbours (u 2e-3);
    # the same year alone says almost nothing.
    "birth_date": {"exact": (0.85, 1e-4), "swapped": (0.03, 1e-4), "typo": (0.06, 2e-3),
                   "year": (0.02, 0.015), "disagree": (0.04, 0.981)},
    # Cities are coarse (a dealer group sells in a handful of cities: u ~ 0.15) and people give their
    # work city or move. "similar": one typo in a long Latin place name (a suburb, as in FEBRL).
    "city": {"exact": (0.88, 0.15), "similar": (0.02, 0.01), "disagree": (0.10, 0.84)},
    # Addresses: rare among different persons but shared within a household (the name tells those
    # apart). Different house numbers disagree; addresses change, so disagreement counts little.
    "address": {"exact": (0.55, 1e-4), "similar": (0.30, 5e-4), "disagree": (0.15, 0.9994)},
    # E-mail local part (any domain): specific, unless it is the name in pinyin, which namesakes share
    # easily: "zhangwei" (u 0.2 among two 张伟) or the name and a few digits, often the birth year
    # ("zhangwei85", u 0.01). People keep several mailboxes: disagreement is weak.
    "email": {"exact": (0.60, 1e-4), "name_digits": (0.60, 0.01), "namelike": (0.60, 0.2),
              "disagree": (0.40, 0.9999)},
}
WEIGHTS: Mapping[str, Mapping[str, float]] = {
    f: {level: math.log2(m / u) for level, (m, u) in levels.items()} for f, levels in MU.items()
}


def prior_log2_odds(persons: int, duplicates_per_person: float = 0.1) -> float:
    """Prior log2 odds that two records picked at random are one person.

    With n persons holding d * n duplicate pairs among n^2 / 2 pairs, the odds are about 2d / n. The
    weights above are the same for any base, so a larger base needs more agreement to reach a
    threshold: two 张伟 born the same day in the same city are a coincidence in a million customers.
    """
    if persons < 2 or duplicates_per_person <= 0:
        raise ValueError("need persons >= 2 and duplicates_per_person > 0")
    return math.log2(2 * duplicates_per_person / persons)


# The default prior: a base of 10,000 persons, one in ten with a duplicate record (-15.6 bits).
PRIOR_LOG2_ODDS = prior_log2_odds(10_000)
# Only these name levels may merge automatically: a high score with a differing name (twins, a
# spouse at the same address, FEBRL's replaced given names) goes to review, never straight to merge.
MERGEABLE_NAME_LEVELS = frozenset({"exact", "homophone", "phonetic", "missing"})

Decision = Literal["merge", "review", "none"]


@dataclass(frozen=True)
class Profile:
    """What we know of a person beyond strong identifiers; every field cleaned (see `profile_of`)."""

    name: str | None
    birth_date: date | None = None
    city: str | None = None
    address: str | None = None
    email_local: str | None = None  # the normalised local part of an e-mail address

    @cached_property
    def _name(self) -> _Name | None:
        return _name_features(self.name) if self.name else None

    @cached_property
    def _city(self) -> tuple[str, bool] | None:
        return _city_key(self.city) if self.city else None


@dataclass(frozen=True)
class Match:
    """The score of a pair and why: per compared field its level, similarity (0..1) and weight (bits)."""

    score: float
    components: dict[str, float] = field(default_factory=dict)
    levels: dict[str, str] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MatchPolicy:
    """Score thresholds: >= auto_merge merges (if the names agree), >= review queues for a human.

    The score is a posterior probability, so review = 0.5 queues every pair more likely one person
    than two; see docs/identity-matching.md for the measured trade-offs.
    """

    auto_merge: float = 0.92
    review: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.review <= self.auto_merge <= 1:
            raise ValueError(f"need 0 < review <= auto_merge <= 1, got review={self.review}, auto_merge={self.auto_merge}")


# ---- building profiles ----------------------------------------------------------------------------

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_TOKEN = re.compile(r"[a-z]+")
_HAN_PLACEHOLDERS = frozenset({
    "先生", "女士", "小姐", "老师", "测试", "未知", "匿名", "客户", "顾客", "用户", "微信用户", "无名", "佚名",
    "本人", "家长", "车主", "不详", "没有", "暂无",
})
_HAN_BANNED_PARTS = ("测试", "某", "公司", "有限", "集团", "门店", "客户", "用户")
_HAN_HONORIFICS = ("先生", "女士", "小姐", "老师", "经理", "老板", "阿姨", "叔叔", "同学", "总", "哥", "姐")
# Whole names that are placeholders ("na" alone is n/a, but Li Na is a name), and words that make any
# name a placeholder.
_LATIN_PLACEHOLDERS = frozenset({
    "asd", "qwer", "abc", "abcd", "xxx", "xx", "none", "nil", "na", "nan", "customer", "user", "guest",
    "anonymous", "name", "sample", "aaa", "aa", "nobody", "noname",
})
_LATIN_JUNK_WORDS = frozenset({"test", "testing", "tester", "asdf", "qwerty", "unknown", "null", "undefined", "demo"})
_LATIN_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam"})
_COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯", "轩辕",
    "长孙", "宇文", "司空", "端木", "澹台", "万俟", "闻人", "南宫", "西门", "独孤", "呼延",
})
_PLACEHOLDER_DATES = frozenset({date(1900, 1, 1), date(1970, 1, 1), date(2000, 1, 1)})
_DATE = re.compile(r"(\d{4})\D{0,2}(\d{1,2})\D{0,2}(\d{1,2})")
# Abbreviations and spellings of cities that customers type; the rest is compared by pinyin.
_CITY_ALIASES = {
    "沪": "上海", "申": "上海", "sh": "上海", "京": "北京", "bj": "北京", "津": "天津", "渝": "重庆",
    "穗": "广州", "gz": "广州", "深": "深圳", "sz": "深圳", "杭": "杭州", "hz": "杭州", "甬": "宁波",
    "锡": "无锡", "金陵": "南京", "庐州": "合肥", "禾": "嘉兴", "姑苏": "苏州",
}
_GENERIC_LOCALS = frozenset({
    "info", "admin", "test", "service", "support", "sales", "contact", "noreply", "hello", "mail", "email",
    "user", "office", "webmaster", "postmaster", "abc", "aaa", "asdf", "qwerty", "123456", "12345678",
    "none", "null", "unknown", "kefu", "hr",
})


def clean_name(raw: str) -> str | None:
    """A person's name, cleaned: Han characters only, or lowercase Latin words; None for placeholders."""
    text = unicodedata.normalize("NFKC", raw).lower()
    han = "".join(_HAN.findall(text))
    if len(han) >= 2:
        for honorific in _HAN_HONORIFICS:  # 张伟先生 → 张伟; 张先生 → 张 (a surname: too little)
            if han.endswith(honorific) and len(han) > len(honorific):
                han = han[: -len(honorific)]
                break
        if (len(han) < 2 or len(han) > 10 or han in _HAN_PLACEHOLDERS or len(set(han)) == 1
                or any(part in han for part in _HAN_BANNED_PARTS)):
            return None
        return han
    text = text.replace("ü", "v")  # pinyin lü/nü are typed lv/nv
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    tokens = [t for t in _LATIN_TOKEN.findall(text) if t not in _LATIN_TITLES]
    letters = "".join(tokens)
    if (len(letters) < 3 or len(set(letters)) == 1 or letters in _LATIN_PLACEHOLDERS
            or any(t in _LATIN_JUNK_WORDS for t in tokens)):
        return None
    return " ".join(tokens)


def clean_birth_date(raw: date | str | None) -> date | None:
    """A date, or an ISO-like string (1985-03-12, 19850312, 1985/3/12, 1985年3月12日); None if unusable."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, str):
        m = _DATE.fullmatch(unicodedata.normalize("NFKC", raw).strip().rstrip("日号"))
        if not m:
            return None
        try:
            raw = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if not isinstance(raw, date) or raw.year < 1900 or raw in _PLACEHOLDER_DATES:
        return None
    return raw


def clean_city(raw: str) -> str | None:
    """A city as typed, canonicalised: 上海市 / 沪 → 上海; Latin names lowercased without spaces."""
    text = "".join(c for c in unicodedata.normalize("NFKC", raw).lower() if c.isalnum())
    if len(text) > 2 and text.endswith("市"):
        text = text[:-1]
    text = _CITY_ALIASES.get(text, text)
    return text if len(text) >= 2 or _HAN.match(text or " ") else None


_ADDRESS_PREFIX = re.compile(r"^(?:[\u4e00-\u9fff]{2,3}省)?(?:[\u4e00-\u9fff]{2,3}市)?")


def clean_address(raw: str) -> str | None:
    """An address without spaces and punctuation, and without a leading province or city name."""
    text = "".join(c for c in unicodedata.normalize("NFKC", raw).lower() if c.isalnum())
    text = _ADDRESS_PREFIX.sub("", text)
    return text if len(text) >= 4 else None


def email_local_part(email: str) -> str | None:
    """The local part of an address, without +tags, dots, dashes and underscores; None if generic."""
    text = unicodedata.normalize("NFKC", email).strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    local = re.sub(r"[._\-]", "", local.split("+", 1)[0])
    if len(local) < 3 or local in _GENERIC_LOCALS or len(set(local)) == 1:
        return None
    return local


def profile_of(attributes: Mapping[str, Any], emails: Iterable[str] = ()) -> Profile | None:
    """A profile from a touchpoint's attributes (name, birth_date, city, address) and its e-mails.

    None when there is too little to match on: no usable name, or a name and nothing else.
    """
    raw_name = attributes.get("name")
    name = clean_name(raw_name) if isinstance(raw_name, str) else None
    if name is None:
        return None

    def text(key: str, clean) -> Any:
        value = attributes.get(key)
        return clean(value) if isinstance(value, str) and value.strip() else None

    birth = attributes.get("birth_date")
    profile = Profile(
        name=name,
        birth_date=clean_birth_date(birth) if isinstance(birth, date | str) else None,
        city=text("city", clean_city),
        address=text("address", clean_address),
        email_local=next((local for e in emails if (local := email_local_part(e))), None),
    )
    if profile.birth_date is None and profile.city is None and profile.address is None and profile.email_local is None:
        return None
    return profile


# ---- name features --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Name:
    text: str
    han: bool  # written in Han characters
    pinyin_like: bool  # Han, or Latin words that all read as pinyin syllables
    tokens: tuple[str, ...]  # Latin words; for Han names (surname pinyin, given-name pinyin)
    readings: tuple[frozenset[str], ...]  # Han names: the toneless readings of each character
    forms: frozenset[str]  # pinyin spellings without spaces (Han: surname first; Latin: both orders)
    spellings: frozenset[str]  # forms, and for Han names what e-mail names make of them (weizhang, zwei)
    parts: frozenset[str]  # name parts as Latin strings, for blocking (surname, given name)


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    """Every toneless pinyin syllable with a vowel (so not the interjections m, n, ng, hm, hng)."""
    from pypinyin.pinyin_dict import pinyin_dict

    found = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            plain = "".join(c for c in unicodedata.normalize("NFKD", reading.replace("ü", "v"))
                            if not unicodedata.combining(c))
            if re.search(r"[aeiouv]", plain):
                found.add(plain)
    return frozenset(found)


@lru_cache(maxsize=1 << 14)
def _is_pinyin(word: str) -> bool:
    """Whether a word splits into pinyin syllables (a vowel-initial syllable can only come first)."""
    syllables, n = _syllables(), len(word)
    ok = [True] + [False] * n
    for end in range(1, n + 1):
        for start in range(max(0, end - 6), end):
            if ok[start] and word[start:end] in syllables and (start == 0 or word[start] not in "aoe"):
                ok[end] = True
                break
    return ok[n]


def _fold_latin(word: str) -> str:
    # lü is written lv, lu or lyu; readings of 吕 give lv and lu (see _readings), so map lyu to lv.
    return word[0] + "v" + word[3:] if word.startswith(("lyu", "nyu")) else word


def _readings(found: list[str]) -> tuple[str, ...]:
    """A character's toneless readings, the most common first (pypinyin's order)."""
    out: list[str] = []
    for r in found[:4]:
        for spelling in (r, r.replace("v", "u")):  # 吕 lv: also written lu
            if spelling not in out:
                out.append(spelling)
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _name_features(raw: str) -> _Name | None:
    name = clean_name(raw)
    if name is None:
        return None
    if _HAN.match(name):
        readings = tuple(_readings(r) for r in pinyin(name, style=Style.NORMAL, heteronym=True, errors="ignore"))
        if len(readings) != len(name):  # a character without a reading: compare characters only
            readings = tuple((c,) for c in name)
        cut = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
        combos = [("".join(c[:cut]), "".join(c[cut:])) for c in islice(product(*readings), 32)]
        forms = frozenset(s + g for s, g in combos)
        parts = frozenset(p for combo in combos for p in combo)
        # How e-mail names are built from a name: zhangwei, weizhang, zwei, zhangw.
        spellings = forms | {x for s, g in combos if g for x in (g + s, s[0] + g, s + g[0])}
        return _Name(name, True, True, combos[0], tuple(map(frozenset, readings)), forms, spellings, parts)
    tokens = tuple(_fold_latin(t) for t in name.split())
    pinyin_like = all(_is_pinyin(t) for t in tokens)
    forms = frozenset({"".join(tokens), "".join(tokens[-1:] + tokens[:-1])})
    parts = set(tokens)
    if len(tokens) >= 3:  # "Zi Yang Zhang": the given name is "ziyang"
        parts |= {"".join(tokens[1:]), "".join(tokens[:-1])}
    return _Name(name, False, pinyin_like, tokens, (), forms, forms, frozenset(parts))


@lru_cache(maxsize=1 << 14)
def _code(word: str) -> str:
    return jellyfish.nysiis(word) if word.isascii() and word.isalpha() else word


def _part_key(part: str) -> str:
    """A name part for blocking: pinyin as is (already phonetic; NYSIIS would turn wei into W), else NYSIIS."""
    return part if _is_pinyin(part) else _code(part)


def _token_sim(x: str, y: str) -> float:
    if x == y:
        return 1.0
    sim = JaroWinkler.similarity(x, y)
    if x[0] == y[0] and _code(x) == _code(y):
        sim = max(sim, 0.9)
    return sim


def _best_forms(a: _Name, b: _Name) -> tuple[float, int]:
    """Highest Jaro-Winkler and lowest OSA distance between the two names' pinyin/Latin spellings."""
    sim, dist = 0.0, 99
    for x in a.forms:
        for y in b.forms:
            sim = max(sim, JaroWinkler.similarity(x, y))
            dist = min(dist, OSA.distance(x, y))
    return sim, dist


def _compare_names(a: _Name, b: _Name) -> tuple[str, str, float]:
    """(weight table, level, similarity). Chinese names (characters or pinyin) use the Han tables."""
    if a.han and b.han:
        if a.text == b.text:
            return "name_han", "exact", 1.0
        if len(a.readings) == len(b.readings) and all(x & y for x, y in zip(a.readings, b.readings)):
            return "name_han", "homophone", 0.95
        return "name_han", "disagree", _best_forms(a, b)[0]
    if a.han or b.han or a.pinyin_like or b.pinyin_like:
        if a.forms & b.forms:
            return "name_pinyin", "phonetic", 0.95
        sim, dist = _best_forms(a, b)
        shortest = min(len(f) for f in a.forms | b.forms)
        return "name_pinyin", "similar" if dist <= 1 and shortest >= 5 else "disagree", sim
    # Latin names that are not pinyin
    sim, dist = _best_forms(a, b)
    if sorted(a.tokens) == sorted(b.tokens) or a.forms & b.forms:
        return "name_latin", "exact", 1.0
    if len(a.tokens) == len(b.tokens) and len(a.tokens) <= 3:
        aligned = max(min(_token_sim(x, y) for x, y in zip(a.tokens, p)) for p in permutations(b.tokens))
        if aligned >= 0.88:
            return "name_latin", "phonetic", max(sim, aligned)
    if dist <= max(1, min(len(f) for f in a.forms | b.forms) // 8):
        return "name_latin", "phonetic", sim
    short, long_ = sorted((a.tokens, b.tokens), key=len)
    if len(short) < len(long_) and len(long_) <= 4 and any(
            all(_token_sim(x, y) >= 0.88 for x, y in zip(short, p)) for p in permutations(long_, len(short))):
        return "name_latin", "missing", sim
    if any(_token_sim(x, y) >= 0.88 for x in a.tokens for y in b.tokens):
        return "name_latin", "partial", sim
    return "name_latin", "disagree", sim


# ---- other fields ---------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 12)
def _city_key(raw: str) -> tuple[str, bool] | None:
    """(the city as toneless pinyin or Latin letters, written in Han?)."""
    city = clean_city(raw)
    if city is None:
        return None
    if _HAN.search(city):
        return "".join(r[0] for r in pinyin(city, style=Style.NORMAL, errors="ignore")), True
    return city, False


def _compare_birth(a: date, b: date) -> tuple[str, float]:
    if a == b:
        return "exact", 1.0
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return "swapped", 0.8
    x, y = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    if OSA.distance(x, y) == 1:  # one digit wrong, or two neighbouring digits swapped
        return "typo", 0.875
    if a.year == b.year:
        return "year", 0.5
    return "disagree", 1 - min(1.0, abs((a - b).days) / 3650)


_NUMBERS = re.compile(r"\d+")


def _compare_address(a: str, b: str) -> tuple[str, float]:
    if a == b:
        return "exact", 1.0
    na, nb = set(_NUMBERS.findall(a)), set(_NUMBERS.findall(b))
    sim = fuzz.ratio(a, b) / 100
    if min(len(a), len(b)) >= 6:
        sim = max(sim, fuzz.partial_ratio(a, b) / 100)
    if na and nb and not (na <= nb or nb <= na):  # another house or flat number: a neighbour
        return "disagree", sim
    return ("similar" if sim >= 0.85 else "disagree"), sim



_TRAILING_DIGITS = re.compile(r"\d{1,4}$")


def _email_level(local: str, *names: _Name | None) -> str:
    """exact, or namelike / name_digits when the shared local part is just a spelling of the name."""
    spellings = frozenset().union(*(n.spellings for n in names if n))
    if local in spellings:
        return "namelike"
    if _TRAILING_DIGITS.sub("", local) in spellings:
        return "name_digits"
    return "exact"


# ---- scoring --------------------------------------------------------------------------------------


def score(a: Profile, b: Profile, *, prior: float = PRIOR_LOG2_ODDS) -> Match:
    """The match score of two profiles (symmetric), with each compared field's level, similarity and weight.

    `prior`: the prior log2 odds of a match, `prior_log2_odds(persons in the tenant)`.
    """
    levels: dict[str, str] = {}
    components: dict[str, float] = {}
    weights: dict[str, float] = {}

    def add(field_: str, table: str, level: str, similarity: float) -> None:
        levels[field_], components[field_] = level, round(similarity, 4)
        weights[field_] = WEIGHTS[table][level]

    na, nb = a._name, b._name
    if na and nb:
        table, level, sim = _compare_names(*sorted((na, nb), key=lambda n: n.text))
        add("name", table, level, sim)
    if a.birth_date and b.birth_date:
        add("birth_date", "birth_date", *_compare_birth(*sorted((a.birth_date, b.birth_date))))
    ca, cb = a._city, b._city
    if ca and cb:
        (x, x_han), (y, y_han) = sorted((ca, cb))
        if x == y:
            add("city", "city", "exact", 1.0)
        else:
            sim = JaroWinkler.similarity(x, y)
            close = not (x_han or y_han) and min(len(x), len(y)) >= 6 and OSA.distance(x, y) <= 1
            add("city", "city", "similar" if close else "disagree", sim)
    if a.address and b.address:
        add("address", "address", *_compare_address(*sorted((a.address, b.address))))
    if a.email_local and b.email_local:
        if a.email_local == b.email_local:
            add("email", "email", _email_level(a.email_local, na, nb), 1.0)
        else:
            x, y = sorted((a.email_local, b.email_local))
            add("email", "email", "disagree", JaroWinkler.similarity(x, y))
    total = prior + sum(weights.values())
    return Match(1 / (1 + 2 ** -max(-60.0, min(60.0, total))), components, levels, weights)


def decide(match: Match, policy: MatchPolicy = MatchPolicy()) -> Decision:
    """merge: score >= auto_merge and the names agree at least phonetically; review: score >= review."""
    if match.score >= policy.auto_merge and match.levels.get("name") in MERGEABLE_NAME_LEVELS:
        return "merge"
    return "review" if match.score >= policy.review else "none"


# ---- blocking -------------------------------------------------------------------------------------


def blocking_keys(profile: Profile) -> frozenset[str]:
    """Keys such that two records of one person almost always share one, while a block stays small.

    n: the name's pinyin (Han and pinyin-written names, heteronym readings included) or its sorted
       NYSIIS codes (other Latin names); b: a name part (pinyin, or its NYSIIS code) + birth year + {day, month}
       (so a transposed day and month keep the key); e: the e-mail local part; d: birth date + city and
       a: the address's house and flat numbers + city, for names too far apart (a wrong character).
    Plain strings carrying personal data: HMAC them with the tenant key before storing.
    """
    keys: set[str] = set()
    n = profile._name
    if n is not None:
        if n.pinyin_like:
            keys |= {f"n:{f}" for f in islice(sorted(n.forms), 8)}
        if not n.han:
            keys.add("n:" + "|".join(sorted(_code(t) for t in n.tokens)))
        if profile.birth_date:
            d = profile.birth_date
            day_month = "-".join(f"{x:02d}" for x in sorted((d.month, d.day)))
            keys |= {f"b:{_part_key(p)}|{d.year}|{day_month}" for p in islice(sorted(n.parts), 8)}
    if profile.email_local:
        keys.add(f"e:{profile.email_local}")
    city = profile._city
    if city and profile.birth_date:
        keys.add(f"d:{profile.birth_date.isoformat()}|{city[0]}")
    if city and profile.address and (numbers := _NUMBERS.findall(profile.address)):
        keys.add(f"a:{'|'.join(sorted(numbers))}|{city[0]}")
    return frozenset(keys)
