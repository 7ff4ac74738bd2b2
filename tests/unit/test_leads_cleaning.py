"""Field cleaning for leads: names, places, products, budgets, phones, and `clean` as a whole."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.identity import LinkedIdentifier, RejectedIdentifier
from services.leads.domain.cleaning import (
    CAR_CATALOGUE,
    HEALTH_CATALOGUE,
    BudgetResult,
    BudgetRules,
    Catalogue,
    Change,
    clean,
    clean_name,
    format_budget,
    normalise_place,
    normalise_province,
    parse_budget,
    phone_findings,
)
from services.leads.domain.cleaning.data import divisions

# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "reasons"),
    [
        ("张伟", "张伟", []),
        ("  张伟 ", "张伟", ["trimmed"]),
        ("ＺＨＡＮＧ　ＷＥＩ", "Zhang Wei", ["fullwidth_to_halfwidth", "latin_case_normalised"]),
        ("张伟😀", "张伟", ["emoji_removed"]),
        ("张伟！！", "张伟", ["fullwidth_to_halfwidth", "punctuation_removed"]),
        ("张伟。", "张伟", ["punctuation_removed"]),
        ("张 伟", "张伟", ["whitespace_removed"]),
        ("张伟123", "张伟", ["digits_removed"]),
        ("JOHN SMITH", "John Smith", ["latin_case_normalised"]),
        ("o'brien", "O'Brien", ["latin_case_normalised"]),
        ("McDonald", "McDonald", []),
        ("Jean-Luc Picard", "Jean-Luc Picard", []),
        ("阿卜杜•热合曼", "阿卜杜·热合曼", ["punctuation_normalised"]),
        ("迪丽热巴·迪力木拉提", "迪丽热巴·迪力木拉提", []),
    ],
)
def test_clean_name_normalises(raw, value, reasons):
    result = clean_name(raw)
    assert result.value == value
    assert [c.reason for c in result.changes] == reasons
    assert all(c.field == "name" and c.before is None and c.after is None for c in result.changes)
    assert result.problem is None


@pytest.mark.parametrize(
    "raw",
    ["先生", "女士", "小姐", "test", "TEST", "测试", "asdf", "aaa", "123", "无", "未知", "客户", "微信用户",
     "用户12345", "张三", "N/A", "null", "啊啊啊", " 先生！ "],
)
def test_placeholder_names_are_dropped(raw):
    result = clean_name(raw)
    assert result.value is None
    assert result.problem == "name_placeholder"
    assert result.changes[-1].reason == "placeholder"


@pytest.mark.parametrize(
    ("raw", "surname", "title"),
    [("张先生", "张", "先生"), ("王女士", "王", "女士"), ("李小姐", "李", "小姐"), ("欧阳先生", "欧阳", "先生"),
     ("刘总", "刘", "总"), ("陈老师", "陈", "老师"), ("老王", "王", "老"), ("覃女士", "覃", "女士")],
)
def test_title_only_names_keep_display_and_surname(raw, surname, title):
    result = clean_name(raw)
    assert (result.value, result.surname, result.title, result.title_only) == (raw, surname, title, True)
    assert result.problem is None


@pytest.mark.parametrize(
    ("raw", "surname"),
    [("张伟", "张"), ("欧阳娜娜", "欧阳"), ("司马懿", "司马"), ("诸葛亮", "诸葛"), ("上官婉儿", "上官"), ("丽丽", None),
     ("John Smith", None)],
)
def test_surname_of_full_names(raw, surname):
    result = clean_name(raw)
    assert result.surname == surname
    assert result.title_only is False


@pytest.mark.parametrize(("raw", "surname"), [("张", "张"), ("王 ", "王"), ("a", None)])
def test_single_character_name(raw, surname):
    result = clean_name(raw)
    assert result.value is None
    assert result.surname == surname
    assert result.problem == "name_single_character"
    assert "single_character" in [c.reason for c in result.changes]


def test_emoji_only_name_is_empty_and_long_chinese_text_is_flagged():
    assert clean_name("😀🎉").value is None
    assert clean_name("😀🎉").problem == "name_empty"
    assert clean_name("我是来咨询买车的").problem == "name_unusual_length"
    assert clean_name(None).value is None and clean_name(None).problem is None


@settings(max_examples=400)
@given(st.text(max_size=40))
def test_clean_name_is_idempotent(raw):
    first = clean_name(raw)
    if first.value is not None:
        again = clean_name(first.value)
        assert again.value == first.value
        assert again.changes == ()
        assert (again.surname, again.title_only) == (first.surname, first.title_only)


# --- places ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("city", "province", "want_city", "want_province", "problem"),
    [
        ("上海", None, "上海", "上海", None),
        ("上海市", None, "上海", "上海", None),
        ("沪", None, "上海", "上海", None),
        ("申", None, "上海", "上海", None),
        ("Shanghai", None, "上海", "上海", None),
        ("SH", None, "上海", "上海", None),
        ("shanghai city", None, "上海", "上海", None),
        ("北京", None, "北京", "北京", None),
        ("京", None, "北京", "北京", None),
        ("Beijing", None, "北京", "北京", None),
        ("BJ", None, "北京", "北京", None),
        ("北京市", None, "北京", "北京", None),
        ("广州", None, "广州", "广东", None),
        ("穗", None, "广州", "广东", None),
        ("Guangzhou", None, "广州", "广东", None),
        ("苏州", None, "苏州", "江苏", None),
        ("苏州市", None, "苏州", "江苏", None),
        ("Suzhou", None, "苏州", "江苏", None),
        ("Suzhou", "安徽", "宿州", "安徽", None),
        ("Taizhou", None, None, None, "ambiguous_city"),
        ("Taizhou", "江苏", "泰州", "江苏", None),
        ("ＳＨＡＮＧＨＡＩ", None, "上海", "上海", None),
        ("延边", None, "延边朝鲜族自治州", "吉林", None),
        ("仙桃", None, "仙桃", "湖北", None),
        ("香港", None, "香港", "香港", None),
        ("台北", None, "台北", "台湾", None),
        ("吉林", None, "吉林", "吉林", None),
        ("朝阳", None, "朝阳", "辽宁", None),  # the prefecture-level city wins
        ("朝阳", "北京", "北京", "北京", None),  # the province picks Beijing's district
        ("朝阳区", None, None, None, "ambiguous_city"),  # Beijing and Changchun both have one
        ("朝阳区", "吉林省", "长春", "吉林", None),
        ("昆山", None, "苏州", "江苏", None),
        ("浦东新区", None, "上海", "上海", None),
        ("浦东", None, "上海", "上海", None),
        ("鼓楼区", "福建", "福州", "福建", None),
        ("江苏苏州", None, "苏州", "江苏", None),
        ("广东省深圳市南山区", None, "深圳", "广东", None),
        ("苏州昆山", None, "苏州", "江苏", None),
        ("苏州", "浙江", "苏州", "江苏", "city_province_mismatch"),
        ("火星", None, None, None, "unknown_city"),
        ("火星", "广东省", None, "广东", "unknown_city"),
        ("广东", None, None, "广东", None),  # a province in the city field
        ("海南", None, None, "海南", None),
        (None, "粤", None, "广东", None),
        ("杭州", "火星省", "杭州", "浙江", "unknown_province"),
        ("", None, None, None, None),
    ],
)
def test_normalise_place(city, province, want_city, want_province, problem):
    result = normalise_place(city, province)
    assert (result.city, result.province, result.problem) == (want_city, want_province, problem)


def test_place_changes_say_why_with_before_and_after():
    assert normalise_place("沪").changes == (
        Change("city", "canonicalised", "沪", "上海"), Change("province", "province_from_city", None, "上海"),
    )
    assert normalise_place("Suzhou").changes[0] == Change("city", "ambiguity_resolved", "Suzhou", "苏州")
    kunshan = normalise_place("昆山")
    assert kunshan.county == "昆山市"
    assert kunshan.changes[0] == Change("city", "county_mapped_to_city", "昆山", "苏州")
    assert normalise_place("苏州", "江苏").changes == ()


@pytest.mark.parametrize(
    ("raw", "want"),
    [("广东省", "广东"), ("粤", "广东"), ("Guangdong", "广东"), ("guangdong province", "广东"), ("内蒙古自治区", "内蒙古"),
     ("新疆维吾尔自治区", "新疆"), ("蜀", "四川"), ("Shaanxi", "陕西"), ("Shanxi", "山西"), ("香港特别行政区", "香港"),
     ("台湾省", "台湾"), ("Tibet", "西藏"), ("火星", None), ("", None)],
)
def test_normalise_province(raw, want):
    assert normalise_province(raw) == want


def test_table_holds_every_province_and_prefecture_level_city():
    assert len(divisions.PROVINCES) == 34
    prefectures = [c for c in divisions.CITIES if c[4] == "prefecture" and c[3] != "71"]
    assert len(prefectures) == 333
    assert len([c for c in divisions.CITIES if c[4] == "municipality"]) == 6
    assert len(divisions.COUNTIES) > 2800


def test_every_canonical_city_cleans_to_itself():
    for _code, canonical, official, _pcode, _level, _keys in divisions.CITIES:
        first = normalise_place(official)
        assert first.city == canonical, official
        again = normalise_place(first.city, first.province)
        assert (again.city, again.province, again.changes, again.problem) == (first.city, first.province, (), None)


@settings(max_examples=300)
@given(st.text(max_size=20), st.one_of(st.none(), st.text(max_size=10)))
def test_normalise_place_is_idempotent(city, province):
    first = normalise_place(city, province)
    if first.city is not None:
        again = normalise_place(first.city, first.province)
        assert (again.city, again.province, again.changes) == (first.city, first.province, ())


# --- products ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "reason"),
    [
        ("Model Y", "Model Y", None),
        ("modely", "Model Y", "alias_matched"),
        ("model-y", "Model Y", "alias_matched"),
        ("ＭＯＤＥＬ　Ｙ", "Model Y", "alias_matched"),
        ("特斯拉Y", "Model Y", "alias_matched"),
        ("小Y", "Model Y", "alias_matched"),
        ("modle y", "Model Y", "typo_matched"),
        ("model 3", "Model 3", "alias_matched"),
        ("比亚迪汉EV", "汉", "partial_matched"),
        ("宋plus dm-i", "宋PLUS", "partial_matched"),
        ("理想L7 Pro", "理想L7", "partial_matched"),
        ("L9", "理想L9", "alias_matched"),
        ("小米SU7 Max", "小米SU7", "partial_matched"),
        ("问界M7", "问界M7", None),
        ("camry", "凯美瑞", "alias_matched"),
        ("camery", "凯美瑞", "typo_matched"),
        ("Accrod", "雅阁", "typo_matched"),
        ("大众朗逸", "朗逸", "alias_matched"),
        ("轩逸", "轩逸", None),
        ("深海鱼油", "鱼油", "alias_matched"),
        ("Omega-3", "鱼油", "alias_matched"),
        ("胶原蛋白肽", "胶原蛋白", "alias_matched"),
        ("乳清蛋白粉", "蛋白粉", "alias_matched"),
        ("probiotcs", "益生菌", "typo_matched"),
    ],
)
def test_product_aliases(raw, value, reason):
    result = CAR_CATALOGUE.merged(HEALTH_CATALOGUE).normalise(raw, "car_model")
    assert result.value == value
    assert result.problem is None
    assert [c.reason for c in result.changes] == ([reason] if reason else [])
    if reason:
        assert result.changes[0] == Change("car_model", reason, raw, value)


@pytest.mark.parametrize("raw", ["model x", "L5", "L60", "汉兰达", "iphone", "Model", "买车"])
def test_unknown_products_are_not_guessed(raw):
    result = CAR_CATALOGUE.normalise(raw)
    assert (result.value, result.problem) == (None, "unknown_product")


def test_catalogue_from_mapping_is_configurable():
    catalogue = Catalogue.from_mapping({"Model Y": ["modely", "model-y", "特斯拉Y", "小Y"], "Model 3": ["model3"]})
    assert catalogue.normalise("MODEL-Y").value == "Model Y"
    assert catalogue.normalise("汉").problem == "unknown_product"
    assert HEALTH_CATALOGUE.normalise("Model Y").problem == "unknown_product"
    with pytest.raises(ValueError, match="both"):
        Catalogue.from_mapping({"A": ["x-1"], "B": ["X1"]})


@given(st.text(max_size=30))
def test_product_normalising_is_idempotent(raw):
    first = CAR_CATALOGUE.merged(HEALTH_CATALOGUE).normalise(raw)
    if first.value is not None:
        again = CAR_CATALOGUE.merged(HEALTH_CATALOGUE).normalise(first.value)
        assert (again.value, again.changes) == (first.value, ())


# --- budget ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "low", "high", "reasons"),
    [
        ("20-30万", 200_000, 300_000, ["range_parsed"]),
        ("20~30万", 200_000, 300_000, ["range_parsed"]),
        ("20～30万", 200_000, 300_000, ["range_parsed"]),
        ("20到30万", 200_000, 300_000, ["range_parsed"]),
        ("20万-30万", 200_000, 300_000, ["range_parsed"]),
        ("30-20万", 200_000, 300_000, ["range_parsed", "range_swapped"]),
        ("5000-2万", 5_000, 20_000, ["range_parsed"]),
        ("25w左右", 225_000, 275_000, ["approximate_widened"]),
        ("约25万", 225_000, 275_000, ["approximate_widened"]),
        ("30万以内", 0, 300_000, ["upper_bound"]),
        ("30万以下", 0, 300_000, ["upper_bound"]),
        ("50万以上", 500_000, None, ["lower_bound"]),
        ("20w+", 200_000, None, ["lower_bound"]),
        ("二十万", 200_000, 200_000, ["single_value", "chinese_numerals"]),
        ("一百万", 1_000_000, 1_000_000, ["single_value", "chinese_numerals"]),
        ("一万五", 15_000, 15_000, ["single_value", "chinese_numerals"]),
        ("三千到五千", 3_000, 5_000, ["range_parsed", "chinese_numerals"]),
        ("十几万", 100_000, 200_000, ["approximate_range", "chinese_numerals"]),
        ("20多万", 200_000, 300_000, ["approximate_range"]),
        ("1万多", 10_000, 20_000, ["approximate_range"]),
        ("2万5", 25_000, 25_000, ["single_value"]),
        ("200000", 200_000, 200_000, []),
        ("200,000元", 200_000, 200_000, ["single_value"]),
        ("￥200000", 200_000, 200_000, ["single_value"]),
        ("15.5万", 155_000, 155_000, ["single_value"]),
        ("1-2k", 1_000, 2_000, ["range_parsed"]),
        ("1.5k-2k", 1_500, 2_000, ["range_parsed"]),
        ("预算 25 万左右", 225_000, 275_000, ["approximate_widened"]),
    ],
)
def test_parse_budget(raw, low, high, reasons):
    result = parse_budget(raw)
    assert (result.low, result.high, result.problem) == (low, high, None)
    assert [c.reason for c in result.changes] == reasons
    assert all(c.before == raw and c.after == format_budget(low, high) for c in result.changes)


@pytest.mark.parametrize(("raw", "reason"), [("面议", "budget_negotiable"), ("待定", "budget_negotiable"),
                                             ("不限", "budget_unlimited"), ("无所谓", "budget_unlimited")])
def test_open_budgets_have_no_range_but_a_reason(raw, reason):
    result = parse_budget(raw)
    assert (result.low, result.high, result.problem) == (None, None, None)
    assert result.changes == (Change("budget", reason, raw, None),)


@pytest.mark.parametrize("raw", ["abc", "2023年买车", "20-30-40万", "30万以内以上", "1,5", "很多钱"])
def test_unparseable_budgets(raw):
    assert parse_budget(raw) == BudgetResult(None, None, (), "unparseable_budget")


def test_budget_rules_are_configurable():
    assert (parse_budget("25万左右", BudgetRules(around=0.2)).low, parse_budget("25万左右", BudgetRules(around=0.2)).high) == (
        200_000, 300_000)
    car = BudgetRules(bare_unit=10_000)
    assert (parse_budget("25", car).low, parse_budget("25", car).high) == (250_000, 250_000)
    assert "unit_assumed" in [c.reason for c in parse_budget("20-30", car).changes]
    assert parse_budget("200000", car).low == 200_000
    assert parse_budget("1e9万").problem == "unparseable_budget"
    assert parse_budget("2000000万").problem == "implausible_budget"
    assert (parse_budget(250000).low, parse_budget(25.5).low) == (250000, 26)


budget_texts = st.one_of(
    st.text(max_size=20),
    st.builds(lambda a, sep, b, unit, tail: f"{a}{sep}{b}{unit}{tail}", st.integers(0, 999), st.sampled_from(["-", "~", "到", "至"]),
              st.integers(0, 999), st.sampled_from(["", "万", "w", "k", "千", "元"]), st.sampled_from(["", "左右", "以内", "以上"])),
    st.builds(lambda a, unit, tail: f"{a}{unit}{tail}", st.floats(0, 9999, allow_nan=False).map(lambda f: round(f, 1)),
              st.sampled_from(["", "万", "w", "k"]), st.sampled_from(["", "左右", "以内", "以上", "多"])),
)


@settings(max_examples=500)
@given(budget_texts)
def test_budget_ranges_are_ordered_and_round_trip(raw):
    result = parse_budget(raw)
    if result.low is not None:
        assert result.low >= 0
        assert result.high is None or result.low <= result.high
        again = parse_budget(format_budget(result.low, result.high))
        assert (again.low, again.high, again.changes) == (result.low, result.high, ())
    else:
        assert result.high is None


# --- phones ------------------------------------------------------------------------------------


def phone(*facts: str) -> LinkedIdentifier:
    return LinkedIdentifier(type="phone", link_id="lk", masked="139****5678", facts=list(facts))


def rejected(reason: str, type_: str = "phone") -> RejectedIdentifier:
    return RejectedIdentifier(type=type_, reason=reason)


@pytest.mark.parametrize(
    ("linked", "rejections", "reachable", "reasons"),
    [
        ([phone("mobile")], [], True, ()),
        ([phone("landline")], [], True, ("landline_only",)),
        ([phone("mobile"), phone("landline")], [], True, ()),
        ([phone("mobile", "virtual_operator")], [], True, ("virtual_operator",)),
        ([phone("mobile", "sequential_digits")], [], True, ("sequential_digits",)),
        ([phone("mobile", "repeated_digits")], [], True, ("repeated_digits",)),
        ([phone("mobile", "foreign")], [], True, ("foreign_phone",)),
        ([], [rejected("blocked_test_number")], False, ("test_number",)),
        ([], [rejected("phone_invalid_for_region")], False, ("invalid_phone",)),
        ([], [rejected("phone_not_a_number")], False, ("invalid_phone",)),
        ([], [rejected("limit:phone")], False, ("phone_over_limit",)),
        ([], [rejected("quarantined")], False, ("phone_quarantined",)),
        ([], [rejected("something_new")], False, ("phone_rejected",)),
        ([], [rejected("quarantined", "email")], False, ()),
        ([phone()], [], False, ()),
        ([LinkedIdentifier(type="wechat_openid", link_id="w", masked="o***", facts=["mobile"])], [], False, ()),
        ([phone("mobile")], [rejected("blocked_test_number"), rejected("phone_not_a_number")], True,
         ("invalid_phone", "test_number")),
    ],
)
def test_phone_findings(linked, rejections, reachable, reasons):
    findings = phone_findings(linked, rejections)
    assert (findings.reachable, findings.reasons) == (reachable, reasons)


# --- clean -------------------------------------------------------------------------------------


def test_clean_combines_every_field():
    result = clean(
        {"name": " 张先生 ", "city": "Shanghai", "car_model": "modely", "budget": "25w左右", "province": "沪"},
        [phone("mobile", "virtual_operator")],
        [rejected("blocked_test_number")],
    )
    assert (result.name, result.surname, result.title_only) == ("张先生", "张", True)
    assert (result.city, result.province, result.product) == ("上海", "上海", "Model Y")
    assert (result.budget_low, result.budget_high, result.reachable) == (225_000, 275_000, True)
    assert result.problems == ("test_number", "virtual_operator")
    assert Change("name", "trimmed") in result.changes
    assert Change("car_model", "alias_matched", "modely", "Model Y") in result.changes


def test_clean_records_problems_and_goes_on():
    result = clean({"name": "测试", "city": "火星", "product": "iphone", "budget": "很多钱"}, [], [rejected("phone_not_a_number")])
    assert result.problems == ("name_placeholder", "unknown_city", "unknown_product", "unparseable_budget", "invalid_phone")
    assert (result.name, result.city, result.product, result.budget_low, result.reachable) == (None, None, None, None, False)
    bad = clean({"name": ["x"], "city": {"a": 1}, "budget": object(), "product": 3})
    assert bad.problems == ("name_not_text", "city_not_text", "unknown_product", "unparseable_budget")


def test_clean_prefers_car_model_and_accepts_pydantic_attributes():
    from schemas.touchpoints import Attributes

    result = clean(Attributes(name="李四光", city="苏州市", product="鱼油", car_model="camry", budget="面议"))
    assert (result.name, result.city, result.province, result.product) == ("李四光", "苏州", "江苏", "凯美瑞")
    assert Change("budget", "budget_negotiable", "面议", None) in result.changes


def test_clean_never_echoes_names_in_changes():
    result = clean({"name": "ＷＡＮＧ　Ｆａｎｇ😀!", "city": "沪"})
    names = [c for c in result.changes if c.field == "name"]
    assert names and all(c.before is None and c.after is None for c in names)


attribute_values = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.floats(), st.booleans(),
                             st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
attribute_dicts = st.dictionaries(
    st.sampled_from(["name", "city", "province", "product", "car_model", "budget", "address", "other"]), attribute_values,
)
identity_facts = st.lists(st.sampled_from(["mobile", "landline", "virtual_operator", "sequential_digits", "repeated_digits",
                                           "foreign", "unknown"]), max_size=3)


@settings(max_examples=300)
@given(attribute_dicts, st.lists(identity_facts.map(lambda f: phone(*f)), max_size=2),
       st.lists(st.sampled_from(["blocked_test_number", "phone_invalid_for_region", "limit:phone", "quarantined", "x"])
                .map(rejected), max_size=2))
def test_clean_never_raises_and_is_idempotent(attributes, linked, rejections):
    first = clean(attributes, linked, rejections)
    assert first.budget_low is None or first.budget_high is None or first.budget_low <= first.budget_high
    assert len(set(first.problems)) == len(first.problems)
    cleaned = {"name": first.name, "city": first.city, "province": first.province, "product": first.product,
               "budget": format_budget(first.budget_low, first.budget_high)}
    again = clean(cleaned, linked, rejections)
    assert again.changes == ()
    assert (again.name, again.city, again.province, again.product, again.budget_low, again.budget_high, again.reachable) == (
        first.name, first.city, first.province, first.product, first.budget_low, first.budget_high, first.reachable)
