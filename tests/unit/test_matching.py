"""Probabilistic person matching: profiles, blocking keys, scores and decisions (pure, no I/O)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from leadflow.simulate.linkage import generate_linkage
from leadflow.simulate.scenario import CITIES, GIVEN, SURNAMES
from services.identity.domain.matching import (
    MatchPolicy,
    Profile,
    blocking_keys,
    clean_birth_date,
    clean_name,
    decide,
    prior_log2_odds,
    profile_of,
    score,
)

NO_DB = settings(database=None, deadline=None)  # no .hypothesis/ example database on disk
BIRTH = date(1985, 3, 12)

han_names = st.builds(lambda s, g: s + g, st.sampled_from(SURNAMES), st.sampled_from(GIVEN))
latin_names = st.sampled_from(["Zhang Wei", "wei zhang", "michaela neumann", "neumann michaela", "Liam Bottroff",
                               "ZHANG Ziyang", "courtney painter", "ouyang na", "Tony Zhang"])
dates = st.dates(min_value=date(1940, 1, 1), max_value=date(2005, 12, 31))
profiles = st.builds(
    Profile,
    name=st.one_of(han_names, latin_names, st.none()),
    birth_date=st.one_of(dates, st.none()),
    city=st.one_of(st.sampled_from(CITIES + ("上海市", "沪", "Shanghai", "winston hills")), st.none()),
    address=st.one_of(st.sampled_from(["浦东新区张杨路123号", "张杨路123号501室", "张杨路125号", "8stanleystreet"]), st.none()),
    email_local=st.one_of(st.sampled_from(["zhangwei", "zhangwei85", "kq8823", "3368885197"]), st.none()),
)


def pair(a: Profile, b: Profile, policy: MatchPolicy = MatchPolicy()) -> str:
    return decide(score(a, b), policy)


# ---- score: properties ----------------------------------------------------------------------------


@NO_DB
@given(profiles, profiles)
def test_score_is_symmetric_and_a_probability(a: Profile, b: Profile) -> None:
    ab, ba = score(a, b), score(b, a)
    assert ab.score == ba.score
    assert ab.levels == ba.levels and ab.components == ba.components
    assert 0.0 <= ab.score <= 1.0
    assert all(0.0 <= v <= 1.0 for v in ab.components.values())


@NO_DB
@given(han_names, dates, st.sampled_from(CITIES))
def test_identical_profiles_with_name_and_birth_date_merge(name: str, birth: date, city: str) -> None:
    p = Profile(name, birth, city)
    m = score(p, p)
    assert m.levels == {"name": "exact", "birth_date": "exact", "city": "exact"}
    assert m.score > 0.99 and decide(m) == "merge"


@NO_DB
@given(profiles, profiles, st.sampled_from(["birth_date", "city", "address", "email_local"]))
def test_a_field_missing_on_one_side_neither_adds_nor_subtracts(a: Profile, b: Profile, name: str) -> None:
    assume(getattr(a, name) is not None)
    without = dataclasses.replace(a, **{name: None})
    field_ = {"email_local": "email"}.get(name, name)
    with_field, without_field = score(a, dataclasses.replace(b, **{name: None})), score(without, b)
    assert field_ not in with_field.levels and field_ not in without_field.levels
    assert with_field.score == score(without, dataclasses.replace(b, **{name: None})).score


@NO_DB
@given(han_names, dates, dates)
def test_namesakes_born_on_other_days_do_not_match(name: str, x: date, y: date) -> None:
    assume(x.year != y.year)
    m = score(Profile(name, x, "上海"), Profile(name, y, "上海"))
    assert m.levels["birth_date"] in ("disagree", "typo")
    if m.levels["birth_date"] == "disagree":
        assert decide(m) == "none"
    else:  # one digit away (1999 / 1969) may be a typo: a person may look, nothing merges by itself
        assert decide(m) in ("none", "review")


def test_different_people_score_low() -> None:
    m = score(Profile("张伟", BIRTH, "上海", "浦东新区张杨路123号", "kq8823"),
              Profile("李娜", date(1990, 7, 1), "杭州", "西湖区文化路7号", "lina90"))
    assert m.score < 1e-6 and decide(m) == "none"
    assert all(w < 0 for w in m.weights.values())


def test_a_larger_customer_base_needs_more_agreement() -> None:
    a, b = Profile("张伟", BIRTH, "上海"), Profile("Zhang Wei", BIRTH)
    small = score(a, b, prior=prior_log2_odds(1_000)).score
    large = score(a, b, prior=prior_log2_odds(1_000_000)).score
    assert small > 0.99 > large


# ---- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["Zhang Wei", "zhang wei", "ZHANG Wei", "Wei Zhang", "zhangwei", "Zhang-Wei"])
def test_a_chinese_name_matches_its_pinyin_spelling(spelling: str) -> None:
    m = score(Profile("张伟", BIRTH, "上海"), Profile(spelling, BIRTH, "Shanghai"))
    assert m.levels["name"] == "phonetic" and m.weights["name"] > 5
    assert decide(m) == "merge"


@pytest.mark.parametrize("han,latin", [("曾伟", "Zeng Wei"), ("曾伟", "Ceng Wei"), ("单丽", "Shan Li"), ("解静", "Xie Jing"),
                                       ("欧阳娜", "Ouyang Na"), ("吕丽", "Lv Li"), ("吕丽", "Lyu Li"), ("吕丽", "Lu Li")])
def test_heteronyms_and_umlaut_spellings_match_any_reading(han: str, latin: str) -> None:
    assert score(Profile(han, BIRTH), Profile(latin, BIRTH)).levels["name"] == "phonetic"


def test_homophone_characters_are_weaker_than_the_same_characters() -> None:
    exact = score(Profile("张伟", BIRTH), Profile("张伟", BIRTH))
    homophone = score(Profile("张伟", BIRTH), Profile("张玮", BIRTH))
    assert homophone.levels["name"] == "homophone"
    assert 0 < homophone.weights["name"] < exact.weights["name"]
    assert score(Profile("曾伟", BIRTH), Profile("增伟", BIRTH)).levels["name"] == "homophone"


@pytest.mark.parametrize("other", ["张强", "王伟", "Li Na", "Tony Zhang"])
def test_other_names_disagree(other: str) -> None:
    m = score(Profile("张伟", BIRTH), Profile(other, BIRTH))
    assert m.levels["name"] == "disagree" and m.weights["name"] < 0


def test_latin_names_by_order_typo_and_missing_part() -> None:
    levels = {other: score(Profile("michaela neumann", BIRTH), Profile(other, BIRTH)).levels["name"]
              for other in ("neumann michaela", "michaela neumnn", "neumann", "angus neumann", "peter brown")}
    assert levels == {"neumann michaela": "exact", "michaela neumnn": "phonetic", "neumann": "missing",
                      "angus neumann": "partial", "peter brown": "disagree"}


def test_a_differing_name_never_merges_automatically() -> None:
    # Twins: same surname, birth date, address and city; the score is high but a human decides.
    a = Profile("张伟", BIRTH, "上海", "浦东新区张杨路123号501室")
    b = Profile("张强", BIRTH, "上海", "浦东新区张杨路123号501室")
    m = score(a, b)
    assert m.score >= MatchPolicy().auto_merge
    assert decide(m) == "review"


# ---- other fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize("other,level", [(date(1985, 3, 12), "exact"), (date(1985, 12, 3), "swapped"),
                                         (date(1985, 3, 13), "typo"), (date(1958, 3, 12), "typo"),
                                         (date(1985, 7, 30), "year"), (date(1990, 7, 30), "disagree")])
def test_birth_date_levels(other: date, level: str) -> None:
    assert score(Profile("张伟", BIRTH), Profile("张伟", other)).levels["birth_date"] == level


def test_birth_date_weights_fall_with_the_level() -> None:
    def weight(other: date) -> float:
        return score(Profile("张伟", BIRTH), Profile("张伟", other)).weights["birth_date"]

    exact, swapped, typo = weight(BIRTH), weight(date(1985, 12, 3)), weight(date(1985, 3, 13))
    year, other = weight(date(1985, 7, 30)), weight(date(1990, 7, 30))
    assert exact > swapped > typo > year >= 0 > other


def test_transposed_day_and_month_still_merge() -> None:
    assert pair(Profile("张伟", BIRTH, "上海"), Profile("张伟", date(1985, 12, 3), "上海市")) == "merge"


@pytest.mark.parametrize("alias", ["上海市", "沪", "Shanghai", " SHANGHAI "])
def test_city_aliases_agree(alias: str) -> None:
    a = profile_of({"name": "张伟", "city": "上海"})
    b = profile_of({"name": "张伟", "city": alias})
    assert a and b and score(a, b).levels["city"] == "exact"
    c = profile_of({"name": "张伟", "city": "杭州"})
    assert c and score(a, c).levels["city"] == "disagree"


def test_addresses_agree_despite_prefixes_but_not_across_house_numbers() -> None:
    base = profile_of({"name": "张伟", "address": "浦东新区张杨路123号501室"})
    same = profile_of({"name": "张伟", "address": "上海市浦东新区张杨路１２３号501室"})
    shorter = profile_of({"name": "张伟", "address": "张杨路123号"})
    neighbour = profile_of({"name": "张伟", "address": "浦东新区张杨路125号501室"})
    assert base and same and shorter and neighbour
    assert score(base, same).levels["address"] == "exact"
    assert score(base, shorter).levels["address"] == "similar"
    assert score(base, neighbour).levels["address"] == "disagree"


def test_an_email_name_that_is_just_the_name_counts_less() -> None:
    def email_weight(local: str) -> float:
        return score(Profile("张伟", email_local=local), Profile("张伟", email_local=local)).weights["email"]

    assert email_weight("zhangwei") < email_weight("weizhang85") < email_weight("kq8823")
    assert score(Profile("张伟", email_local="zhangwei"), Profile("张伟", email_local="zhangwei")).levels["email"] == "namelike"


# ---- profiles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["先生", "张先生", "王总", "测试", "测试用户", "张某某", "test", "Test User", "asdf", "a", "张",
                                 "  ", "Mr.", "xxx", "N/A", "啊啊啊", "上海某某汽车销售有限公司", "unknown customer"])
def test_placeholder_names_are_rejected(raw: str) -> None:
    assert clean_name(raw) is None
    assert profile_of({"name": raw, "city": "上海", "birth_date": "1985-03-12"}) is None


@pytest.mark.parametrize("raw,clean", [("张伟先生", "张伟"), (" 张 伟 ", "张伟"), ("张·伟", "张伟"), ("ＺＨＡＮＧ  Wei", "zhang wei"),
                                       ("Mr. John O'Brien", "john o brien"), ("Lü Li", "lv li"), ("José", "jose"), ("Li Na", "li na")])
def test_names_are_cleaned(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize("raw", ["1985-03-12", "19850312", "1985/3/12", "1985年3月12日", "１９８５-03-12", date(1985, 3, 12)])
def test_birth_dates_are_parsed(raw) -> None:
    assert clean_birth_date(raw) == BIRTH


@pytest.mark.parametrize("raw", ["1985-02-30", "unknown", "1900-01-01", "12/03/85", ""])
def test_unusable_birth_dates_are_dropped(raw: str) -> None:
    assert clean_birth_date(raw) is None


def test_profile_of_needs_a_name_and_something_else() -> None:
    assert profile_of({"name": "张伟"}) is None
    assert profile_of({"city": "上海", "birth_date": "1985-03-12"}) is None
    p = profile_of({"name": "张伟", "birth_date": "19850312", "city": "沪", "address": "上海市浦东新区张杨路123号"},
                   ["not-an-email", "Zhang.Wei+crm@QQ.com"])
    assert p == Profile("张伟", BIRTH, "上海", "浦东新区张杨路123号", "zhangwei")


def test_generic_mailboxes_are_not_matched_on() -> None:
    p = profile_of({"name": "张伟", "city": "上海"}, ["info@dealer.cn", "test@qq.com"])
    assert p is not None and p.email_local is None


# ---- blocking -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [
    Profile("Zhang Wei", city="Shanghai"),  # pinyin, no birth date
    Profile("Wei Zhang", date(1985, 12, 3)),  # pinyin in Western order, day and month swapped
    Profile("张玮", email_local="kq8823"),  # a homophone
    Profile("张强", BIRTH, "上海"),  # a wrong character: the surname with the birth date
    Profile("章伟", BIRTH),  # a wrong surname: the given name with the birth date
    Profile("Zhagn Wei", BIRTH),  # a typo in the romanisation
    Profile("王芳", email_local="kq8823"),  # another name altogether, the same mailbox name
    Profile("张纬伟", BIRTH, "上海市"),  # a different name, same birth date and city
])
def test_typical_true_match_variants_share_a_blocking_key(variant: Profile) -> None:
    original = Profile("张伟", BIRTH, "上海", "浦东新区张杨路123号", "kq8823")
    assert blocking_keys(original) & blocking_keys(variant)


def test_unrelated_profiles_share_no_blocking_key() -> None:
    a = Profile("张伟", BIRTH, "上海", "浦东新区张杨路123号", "kq8823")
    b = Profile("李娜", date(1990, 7, 1), "上海", "西湖区文化路7号", "lina90")
    assert blocking_keys(a) and not blocking_keys(a) & blocking_keys(b)


def test_heteronym_surnames_block_under_every_reading() -> None:
    assert blocking_keys(Profile("曾伟", BIRTH)) & blocking_keys(Profile("Zeng Wei", city="上海"))
    assert blocking_keys(Profile("曾伟", BIRTH)) & blocking_keys(Profile("Ceng Wei", city="上海"))


# ---- policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("auto_merge,review", [(0.9, 0.95), (1.1, 0.5), (0.9, 0.0), (0.9, -0.1)])
def test_policy_rejects_inconsistent_thresholds(auto_merge: float, review: float) -> None:
    with pytest.raises(ValueError):
        MatchPolicy(auto_merge=auto_merge, review=review)


def test_policy_decides_by_thresholds() -> None:
    a, b = Profile("张伟", BIRTH, "上海"), Profile("张伟", date(1985, 3, 13), "上海")  # a typo in the date
    m = score(a, b)
    assert 0.0 < m.score < 1.0
    assert decide(m, MatchPolicy(auto_merge=m.score, review=m.score)) == "merge"
    assert decide(m, MatchPolicy(auto_merge=min(1.0, m.score + 1e-9), review=m.score)) == "review"
    assert decide(m, MatchPolicy(auto_merge=1.0, review=min(1.0, m.score + 1e-9))) == "none"


def test_prior_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        prior_log2_odds(1)
    assert prior_log2_odds(10_000) < prior_log2_odds(100)


# ---- on the simulator's ground truth --------------------------------------------------------------


def test_linkage_simulator_is_deterministic_and_truthful() -> None:
    a, b = generate_linkage(3, persons=200), generate_linkage(3, persons=200)
    assert a == b
    persons = {r.record_id: r.person_id for r in a.records}
    assert a.true_pairs and all(persons[x] == persons[y] for x, y in a.true_pairs)
    assert a.hard_negatives and all(persons[x] != persons[y] for x, y in a.hard_negatives)
    assert generate_linkage(4, persons=200).records != a.records


def test_quality_floor_on_the_simulator() -> None:
    """A regression guard: blocking keeps most true pairs and automatic merges stay right."""
    truth = generate_linkage(11, persons=600)
    profs = {r.record_id: profile_of(r.attributes, r.emails) for r in truth.records}
    blocks: dict[str, list[str]] = {}
    for rid, p in profs.items():
        for key in blocking_keys(p) if p else ():
            blocks.setdefault(key, []).append(rid)
    blocked = {tuple(sorted((x, y))) for members in blocks.values() for i, x in enumerate(members) for y in members[i + 1:]}
    prior = prior_log2_odds(len(profs))
    merged = {p for p in blocked if decide(score(profs[p[0]], profs[p[1]], prior=prior)) == "merge"}
    assert len(blocked & truth.true_pairs) / len(truth.true_pairs) > 0.9
    assert merged and len(merged & truth.true_pairs) / len(merged) >= 0.99
