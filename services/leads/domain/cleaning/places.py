"""City and province: one canonical form from the bundled table of Chinese administrative divisions.

Canonical forms: a province is its short name (广东, 内蒙古, 上海); a city is its official name without
市 (苏州, 北京), while 地区, 盟 and 自治州 keep their official name (阿里地区, 延边朝鲜族自治州). A county-level
input (昆山, 浦东新区) resolves to its prefecture-level city and is kept as `county`.

How a city text resolves, first rule that gives an answer wins:
1. the canonical name of a city (吉林 is the city 吉林市, not the province);
2. the name of a province in the city field (广东, 海南): province set, city left empty;
3. any other alias of a prefecture-level city, municipality or province-direct city (沪, Shanghai, 延边);
4. a county-level division (昆山, 浦东新区, 朝阳区);
5. "<province><city>[<county>]" written together (江苏苏州, 广东省深圳市南山区).
A provided province narrows the candidates of every rule. Where several candidates remain, a
prefecture-level city beats a county-level one (朝阳 is 朝阳市 in Liaoning, unless the province is 北京);
a Latin spelling shared by two cities takes the one in LATIN_PREFERRED (Suzhou → 苏州), otherwise the
city is left empty with problem "ambiguous_city". A city outside the given province resolves anyway,
takes the city's province and reports "city_province_mismatch".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cache

from services.leads.domain.cleaning.change import Change, lookup_key
from services.leads.domain.cleaning.data import divisions

LATIN_PREFERRED = {"suzhou": "苏州", "fuzhou": "福州"}
LATIN_SUFFIXES = ("city", "shi")


@dataclass(frozen=True)
class Place:
    code: str
    name: str  # canonical
    province: str  # canonical province name
    level: str  # municipality | prefecture | province_direct | county
    city: str | None  # for a county, its city's canonical name


@dataclass(frozen=True)
class PlaceResult:
    city: str | None
    province: str | None
    changes: tuple[Change, ...] = ()
    problem: str | None = None  # unknown_city | ambiguous_city | city_province_mismatch | unknown_province
    county: str | None = None


@dataclass(frozen=True)
class _Table:
    provinces: dict[str, str]  # key → canonical province
    province_names: frozenset[str]  # keys that are a province's full or short name (not 简称 or Latin)
    city_canonical: dict[str, tuple[Place, ...]]
    cities: dict[str, tuple[Place, ...]]
    counties: dict[str, tuple[Place, ...]]


@cache
def _table() -> _Table:
    provinces: dict[str, str] = {}
    province_names: set[str] = set()
    by_code: dict[str, str] = {}
    for code, canonical, official, keys in divisions.PROVINCES:
        by_code[code] = canonical
        for k in keys:
            provinces.setdefault(k, canonical)
        province_names.update({lookup_key(canonical), lookup_key(official)})
    city_canonical: dict[str, list[Place]] = defaultdict(list)
    cities: dict[str, list[Place]] = defaultdict(list)
    city_by_code: dict[str, str] = {}
    for code, canonical, _official, pcode, level, keys in divisions.CITIES:
        place = Place(code, canonical, by_code[pcode], level, canonical)
        city_by_code[code] = canonical
        city_canonical[lookup_key(canonical)].append(place)
        for k in keys:
            cities[k].append(place)
    counties: dict[str, list[Place]] = defaultdict(list)
    for code, canonical, _official, ccode, pcode, keys in divisions.COUNTIES:
        city = city_by_code.get(ccode) or by_code[pcode]  # districts of a municipality belong to it
        place = Place(code, canonical, by_code[pcode], "county", city)
        for k in keys:
            counties[k].append(place)
    # 上海市 in the city field is the city: a municipality's names are city names first.
    province_names -= {k for k, places in cities.items() if any(p.level == "municipality" for p in places)}
    return _Table(
        provinces, frozenset(province_names), {k: tuple(v) for k, v in city_canonical.items()},
        {k: tuple(v) for k, v in cities.items()}, {k: tuple(v) for k, v in counties.items()},
    )


def normalise_province(raw: str | None) -> str | None:
    """The canonical province for any of its spellings (广东省, 粤, Guangdong), else None."""
    if not raw:
        return None
    key = lookup_key(raw)
    table = _table()
    if key in table.provinces:
        return table.provinces[key]
    for suffix in LATIN_SUFFIXES + ("province", "sheng"):
        if key.endswith(suffix) and key[: -len(suffix)] in table.provinces:
            return table.provinces[key[: -len(suffix)]]
    return None


def _in_province(places: tuple[Place, ...], province: str | None) -> tuple[Place, ...]:
    if province is None:
        return places
    return tuple(p for p in places if p.province == province)


def _pick(key: str, places: tuple[Place, ...], province: str | None) -> tuple[Place | None, bool, str | None]:
    """(place, narrowed by a choice, problem) among candidates for one key."""
    places = tuple(dict.fromkeys(places))
    narrowed = _in_province(places, province)
    mismatch = bool(places) and not narrowed and province is not None
    candidates = narrowed or places
    best = [p for p in candidates if p.level != "county"] or list(candidates)
    distinct = {(p.name, p.province, p.city) for p in best}
    if len(distinct) == 1:
        chosen = min(best, key=lambda p: p.code)
        return chosen, len(candidates) > 1, "city_province_mismatch" if mismatch else None
    preferred = LATIN_PREFERRED.get(key)
    for p in best:
        if p.name == preferred:
            return p, True, "city_province_mismatch" if mismatch else None
    return None, False, "ambiguous_city"


def _resolve(key: str, province: str | None) -> tuple[Place | None, bool, str | None, str | None]:
    """(place, chosen among several, problem, province named in the city field)."""
    table = _table()
    keys = [key] + [key[: -len(s)] for s in LATIN_SUFFIXES if key.endswith(s) and key.isascii() and len(key) > len(s) + 1]
    everything = tuple(
        p for k in keys for p in (*table.city_canonical.get(k, ()), *table.cities.get(k, ()), *table.counties.get(k, ()))
    )
    if province is not None and _in_province(everything, province):
        place, chosen, problem = _pick(key, _in_province(everything, province), province)
        return place, chosen or len(set(everything)) > 1, problem, None
    for k in keys:
        if k in table.city_canonical:
            place, chosen, problem = _pick(k, table.city_canonical[k], province)
            return place, chosen or k in table.counties, problem, None
    if key in table.province_names:
        return None, False, None, table.provinces[key]
    for k in keys:
        if k in table.cities:
            place, chosen, problem = _pick(k, table.cities[k], province)
            return place, chosen or k in table.counties, problem, None
    if key in table.counties:
        return (*_pick(key, table.counties[key], province), None)
    # "<province><city>[<county>]" written as one: peel the longest province name off the front.
    for i in range(min(len(key) - 1, 8), 1, -1):
        head, rest = key[:i], key[i:]
        if head in table.provinces and head in table.province_names:
            place, chosen, problem, _ = _resolve(rest, table.provinces[head])
            if place is not None and place.province == table.provinces[head]:
                mismatch = province is not None and place.province != province
                return place, chosen, "city_province_mismatch" if mismatch else problem, None
    # "<city><county>": the county decides, within the city.
    for i in range(min(len(key) - 1, 8), 1, -1):
        head, rest = key[:i], key[i:]
        for city in table.cities.get(head, ()):
            for county in table.counties.get(rest, ()):
                if county.city == city.name:
                    mismatch = province is not None and county.province != province
                    return county, False, "city_province_mismatch" if mismatch else None, None
    return None, False, None, None


def normalise_place(city: str | None, province: str | None = None) -> PlaceResult:
    """Canonical city and province for raw city and province texts (either may be missing)."""
    changes: list[Change] = []
    raw_city = city.strip() if isinstance(city, str) else None
    raw_province = province.strip() if isinstance(province, str) else None
    canon_province = normalise_province(raw_province)
    problem = None
    if raw_province and canon_province is None:
        problem = "unknown_province"
    elif raw_province and canon_province != raw_province:
        changes.append(Change("province", "canonicalised", raw_province, canon_province))
    if not raw_city:
        return PlaceResult(None, canon_province, tuple(changes), problem)

    place, chosen, city_problem, province_in_city = _resolve(lookup_key(raw_city), canon_province)
    if province_in_city is not None:
        if canon_province is None:
            changes.append(Change("province", "province_from_city_field", raw_city, province_in_city))
            canon_province = province_in_city
        changes.append(Change("city", "city_was_province", raw_city, None))
        return PlaceResult(None, canon_province, tuple(changes), problem)
    if place is None:
        return PlaceResult(None, canon_province, tuple(changes), city_problem or "unknown_city")

    county = place.name if place.level == "county" else None
    city_name = place.city
    if county is not None:
        changes.append(Change("city", "county_mapped_to_city", raw_city, city_name))
    elif city_name != raw_city:
        changes.append(Change("city", "ambiguity_resolved" if chosen else "canonicalised", raw_city, city_name))
    if canon_province is None:
        changes.append(Change("province", "province_from_city", None, place.province))
    elif canon_province != place.province:
        changes.append(Change("province", "province_from_city", canon_province, place.province))
    return PlaceResult(city_name, place.province, tuple(changes), city_problem or problem, county)
