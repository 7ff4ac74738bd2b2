"""A seeded record-linkage ground truth for probabilistic person matching (pure: no I/O, no clock).

`generate_linkage` makes persons with Chinese names (the scenario's name and city lists), birth
dates, cities, addresses and e-mails, one record each. For a share of them it adds a second record of
the same person that shares NO strong identifier with the first and carries realistic variations: the
name in pinyin, a homophone (an IME slip) or another character, a field left out, day and month
transposed or a digit mistyped in the birth date, a city alias (上海 / 上海市 / 沪 / Shanghai), the same
mailbox name at another provider or another mailbox, the address written differently, a move. It also
adds hard negatives: different persons with the same name in the same city, relatives at the same
address, and a few twins. Every field except the name may be absent, as in real forms.
Same seed, same output.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import combinations
from typing import Any

from pypinyin import lazy_pinyin

from leadflow.simulate.scenario import CITIES, GIVEN, MAIL_DOMAINS, SURNAMES

# Surnames whose everyday reading differs from the character's first dictionary reading.
HETERONYM_SURNAMES = {"曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "欧阳": "ouyang"}
# Characters of GIVEN and characters with the same toneless pinyin: what a pinyin IME offers next.
HOMOPHONES = {
    "伟": "玮炜维", "娜": "那", "敏": "民闵", "静": "靜晶菁", "磊": "垒蕾", "洋": "阳杨扬", "艳": "燕彦雁",
    "勇": "永咏涌", "军": "君俊均", "杰": "洁捷婕", "涛": "滔韬", "明": "铭鸣", "超": "潮", "秀": "绣",
    "英": "瑛莹", "丽": "莉俐立", "强": "蔷", "婷": "亭庭霆", "鹏": "朋", "浩": "皓昊", "然": "冉",
    "子": "紫梓", "涵": "晗寒含", "欣": "心馨", "怡": "宜仪", "宇": "雨语羽", "轩": "萱宣",
}
NAME_CHARS = "".join(sorted(set("".join(GIVEN))))
CITY_ALIASES = {
    "上海": ("上海市", "沪", "Shanghai"), "杭州": ("杭州市", "杭", "Hangzhou"), "苏州": ("苏州市", "Suzhou"),
    "南京": ("南京市", "Nanjing"), "无锡": ("无锡市", "Wuxi"), "宁波": ("宁波市", "甬", "Ningbo"),
    "嘉兴": ("嘉兴市", "Jiaxing"), "合肥": ("合肥市", "Hefei"),
}
DISTRICTS = {
    "上海": ("浦东新区", "徐汇区", "闵行区", "静安区", "杨浦区"), "杭州": ("西湖区", "滨江区", "余杭区", "拱墅区"),
    "苏州": ("姑苏区", "吴中区", "相城区"), "南京": ("鼓楼区", "玄武区", "江宁区"), "无锡": ("梁溪区", "滨湖区", "新吴区"),
    "宁波": ("鄞州区", "海曙区", "江北区"), "嘉兴": ("南湖区", "秀洲区"), "合肥": ("蜀山区", "包河区", "庐阳区"),
}
STREETS = ("中山路", "人民路", "解放路", "建设路", "和平路", "新华路", "文化路", "学府路", "长江路", "延安路",
           "湖滨路", "青年路", "东风路", "光明路", "胜利路", "世纪大道", "滨江大道", "花园街")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
# Which fields a record carries (the name always): lead forms rarely ask for a birth date or address.
PRESENCE = {"birth_date": 0.6, "city": 0.9, "address": 0.4, "email": 0.5}
# Variations of a second record and how often each is drawn (one to three per record).
VARIATIONS = {"pinyin": 0.22, "homophone": 0.18, "other_char": 0.04, "swap_day_month": 0.10, "date_typo": 0.07,
              "city_alias": 0.20, "email_domain": 0.22, "email_other": 0.08, "address_variant": 0.18, "moved": 0.03}


@dataclass(frozen=True)
class LinkageRecord:
    """One record as a touchpoint would carry it: attributes and e-mails, no phone or WeChat id."""

    record_id: str
    person_id: str
    attributes: Mapping[str, Any]  # name, and maybe birth_date (a string), city, address
    emails: tuple[str, ...]
    variations: tuple[str, ...] = ()  # how this record was altered from the person's first record


@dataclass(frozen=True)
class LinkageTruth:
    seed: int
    records: tuple[LinkageRecord, ...]
    true_pairs: frozenset[tuple[str, str]]  # (record id, record id), sorted: the same person
    hard_negatives: frozenset[tuple[str, str]]  # pairs built to be confusable: different persons

    def summary(self) -> dict[str, int]:
        return {"records": len(self.records), "persons": len({r.person_id for r in self.records}),
                "true_pairs": len(self.true_pairs), "hard_negatives": len(self.hard_negatives)}


@dataclass
class _Person:
    pid: str
    surname: str
    given: str
    birth: date
    city: str
    district: str
    street: str
    number: int
    flat: str
    local: str
    domain: str

    @property
    def name(self) -> str:
        return self.surname + self.given

    def address(self) -> str:
        return f"{self.district}{self.street}{self.number}号{self.flat}"


def _surname(rng: random.Random) -> str:
    return rng.choice(tuple(HETERONYM_SURNAMES)) if rng.random() < 0.05 else rng.choice(SURNAMES)


def _surname_pinyin(surname: str) -> str:
    return HETERONYM_SURNAMES.get(surname) or "".join(lazy_pinyin(surname))


def _birth(rng: random.Random) -> date:
    return date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 44))


def _local(rng: random.Random, surname: str, given: str, birth: date) -> str:
    s, g = _surname_pinyin(surname), "".join(lazy_pinyin(given))
    style = rng.random()
    if style < 0.25:
        return s + g + rng.choice(("", "", str(birth.year), f"{birth.year % 100:02d}", str(rng.randint(1, 999))))
    if style < 0.35:
        return f"{g}.{s}" if rng.random() < 0.5 else f"{s[0]}{g}{rng.randint(10, 99)}"
    if style < 0.65:
        return str(rng.randrange(10**5, 10**10))  # a QQ number
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(rng.choice(letters) for _ in range(rng.randint(5, 8))) + str(rng.randint(10, 99))


def _flat(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return ""
    building, room = rng.randint(1, 30), rng.randint(1, 26) * 100 + rng.randint(1, 4)
    return rng.choice((f"{building}栋{room}室", f"{building}号楼{room}室", f"{room}室"))


def _person(rng: random.Random, pid: str, **fixed: Any) -> _Person:
    surname = fixed.pop("surname", None) or _surname(rng)
    given = fixed.pop("given", None) or rng.choice(GIVEN)
    birth = fixed.pop("birth", None) or _birth(rng)
    city = fixed.pop("city", None) or rng.choice(CITIES)
    values = {"district": rng.choice(DISTRICTS[city]), "street": rng.choice(STREETS), "number": rng.randint(1, 999),
              "flat": _flat(rng), "local": _local(rng, surname, given, birth), "domain": rng.choice(MAIL_DOMAINS)}
    values.update(fixed)
    return _Person(pid, surname, given, birth, city, **values)


def _date_text(rng: random.Random, d: date) -> str:
    return rng.choice((d.isoformat(), d.isoformat(), d.isoformat(), f"{d.year}/{d.month}/{d.day}",
                       d.strftime("%Y%m%d"), f"{d.year}年{d.month}月{d.day}日"))


def _record(rng: random.Random, p: _Person) -> dict[str, Any]:
    """A first record of the person: the name, and each other field if the form asked for it."""
    fields: dict[str, Any] = {"name": p.name, "birth_date": p.birth, "city": p.city, "address": p.address(),
                              "email": f"{p.local}@{p.domain}"}
    return {k: v for k, v in fields.items() if k == "name" or rng.random() < PRESENCE[k]}


def _pinyin_name(rng: random.Random, p: _Person, given: str) -> str:
    s, g = _surname_pinyin(p.surname), "".join(lazy_pinyin(given))
    return rng.choice((f"{s.title()} {g.title()}", f"{s.upper()} {g.title()}", f"{g.title()} {s.title()}",
                       f"{s}{g}", f"{s.title()}{g}"))


def _date_typo(rng: random.Random, d: date) -> date:
    text = d.strftime("%Y%m%d")
    for _ in range(50):
        i = rng.choice((2, 3, 5, 6, 7))  # the decade, year, month units and day digits
        candidate = text[:i] + str(rng.randrange(10)) + text[i + 1:]
        try:
            new = date(int(candidate[:4]), int(candidate[4:6]), int(candidate[6:]))
        except ValueError:
            continue
        if new != d:
            return new
    return d + timedelta(days=1)


def _variant(rng: random.Random, p: _Person) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A second record of p: presence drawn afresh, then one to three variations."""
    names, wanted = list(VARIATIONS), rng.choice((1, 1, 2, 2, 3))
    chosen: list[str] = []
    while len(chosen) < wanted:
        v = rng.choices(names, weights=list(VARIATIONS.values()))[0]
        exclusive = {"pinyin", "homophone", "other_char"}  # a pinyin spelling hides a character change
        if v not in chosen and not (v in exclusive and exclusive & set(chosen)):
            chosen.append(v)
    given, birth, city, address = p.given, p.birth, p.city, p.address()
    local, domain = p.local, p.domain
    name = p.name
    applied: list[str] = []
    for v in chosen:
        if v == "homophone" or v == "other_char":
            i = rng.randrange(len(given))
            if v == "homophone" and given[i] in HOMOPHONES:
                given = given[:i] + rng.choice(HOMOPHONES[given[i]]) + given[i + 1:]
            else:  # a clerk's wrong character: the name reads differently now
                v = "other_char"
                given = given[:i] + rng.choice([c for c in NAME_CHARS if c != given[i]]) + given[i + 1:]
            name = p.surname + given
        elif v == "pinyin":
            name = _pinyin_name(rng, p, given)
        elif v == "swap_day_month" and birth.day <= 12 and birth.day != birth.month:
            birth = date(birth.year, birth.day, birth.month)
        elif v in ("swap_day_month", "date_typo"):
            v, birth = "date_typo", _date_typo(rng, birth)
        elif v == "city_alias":
            city = rng.choice(CITY_ALIASES[p.city])
        elif v == "email_domain":
            domain = rng.choice([d for d in MAIL_DOMAINS if d != p.domain])
        elif v == "email_other":
            local, domain = _local(rng, p.surname, given, birth), rng.choice(MAIL_DOMAINS)
        elif v == "address_variant":
            address = rng.choice((f"{p.city}市{address}", f"{p.city}{address}", address.translate(FULLWIDTH),
                                  f"{p.street}{p.number}号{p.flat}", f"{p.district}{p.street}{p.number}号"))
        elif v == "moved":
            city = rng.choice([c for c in CITIES if c != p.city])
            address = f"{rng.choice(DISTRICTS[city])}{rng.choice(STREETS)}{rng.randint(1, 999)}号{_flat(rng)}"
        applied.append(v)
    fields = {"name": name, "birth_date": birth, "city": city, "address": address, "email": f"{local}@{domain}"}
    record = {k: v for k, v in fields.items() if k == "name" or rng.random() < PRESENCE[k]}
    return record, tuple(applied)


def generate_linkage(seed: int, persons: int = 3000, duplicate_rate: float = 0.4,
                     hard_negative_rate: float = 0.1) -> LinkageTruth:
    """`persons` persons with a first record each, second records for `duplicate_rate` of them, plus
    confusable other persons (about `hard_negative_rate` × persons namesakes and half as many relatives)."""
    rng = random.Random(seed)
    people = [_person(rng, f"p-{i:05d}") for i in range(persons)]
    negatives: list[tuple[_Person, _Person]] = []
    for kind, rate in (("namesake", hard_negative_rate), ("relative", hard_negative_rate / 2), ("twin", 0.005)):
        for base in rng.sample(people[:persons], round(rate * persons)):
            pid = f"p-{len(people):05d}"
            if kind == "namesake":
                other = _person(rng, pid, surname=base.surname, given=base.given, city=base.city)
            else:
                given = rng.choice([g for g in GIVEN if g != base.given])
                other = _person(rng, pid, surname=base.surname, given=given, city=base.city,
                                birth=base.birth if kind == "twin" else None, district=base.district,
                                street=base.street, number=base.number, flat=base.flat)
            people.append(other)
            negatives.append((base, other))

    drafts: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [(p.pid, _record(rng, p), ()) for p in people]
    for p in people:
        if rng.random() < duplicate_rate:
            record, applied = _variant(rng, p)
            drafts.append((p.pid, record, applied))
    rng.shuffle(drafts)

    records: list[LinkageRecord] = []
    by_person: dict[str, list[str]] = {}
    for i, (pid, fields, applied) in enumerate(drafts):
        rid = f"r-{i:06d}"
        email = fields.pop("email", None)
        if isinstance(fields.get("birth_date"), date):
            fields["birth_date"] = _date_text(rng, fields["birth_date"])
        records.append(LinkageRecord(rid, pid, fields, (email,) if email else (), applied))
        by_person.setdefault(pid, []).append(rid)
    true_pairs = frozenset(tuple(sorted(pair)) for rids in by_person.values() for pair in combinations(rids, 2))
    hard = frozenset(tuple(sorted((x, y))) for a, b in negatives for x in by_person[a.pid] for y in by_person[b.pid])
    return LinkageTruth(seed, tuple(records), true_pairs, hard)
