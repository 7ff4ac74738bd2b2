"""Identity domain: normalisation, guardrails, masking, keyed hashes and stitching decisions (pure)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.touchpoints import Identifier, IdentifierType, TouchpointReceived
from services.identity.domain import keys
from services.identity.domain.guardrails import blocked_reason
from services.identity.domain.masking import mask
from services.identity.domain.normalize import (
    InvalidIdentifier,
    NormalizedIdentifier,
    normalize,
    normalize_phone,
)
from services.identity.domain.stitching import Person, oldest_first, prepare, split_winner

T0 = datetime(2025, 5, 20, 12, 0, tzinfo=timezone.utc)
PHONE_REASONS = {"phone_not_a_number", "phone_invalid_for_region"}
NO_DB = settings(database=None)  # no .hypothesis/ example database on disk: these are pure tests


def ident(kind: IdentifierType, value: str, namespace: str | None = None) -> Identifier:
    return Identifier(type=kind, value=value, namespace=namespace)


def norm(kind: IdentifierType, value: str, namespace: str | None = None) -> NormalizedIdentifier:
    return normalize(ident(kind, value, namespace))


def touchpoint(*identifiers: Identifier, event_id: str = "e-1") -> TouchpointReceived:
    return TouchpointReceived(
        event_id=event_id,
        event_type="page_viewed",
        occurred_at=T0,
        tenant_id="demo",
        source={"system": "web", "channel": "site"},
        identifiers=list(identifiers),
    )


# ---- phones ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "13800001111",
        "+86 138 0000 1111",
        "0086-138-0000-1111",
        "86 13800001111",
        "(+86)138-0000-1111",
        "１３８００００１１１１",  # full-width digits
        "＋８６　１３８－００００－１１１１",  # full-width plus, ideographic space, full-width hyphens
        "138.0000.1111",
    ],
)
def test_phone_spellings_normalise_to_e164(spelling):
    assert normalize_phone(spelling) == "+8613800001111"
    assert norm(IdentifierType.PHONE, spelling) == NormalizedIdentifier(IdentifierType.PHONE, "+8613800001111")


_FULL_WIDTH = str.maketrans("0123456789+-() ", "０１２３４５６７８９＋－（）\u3000")
_MOBILE_PREFIXES = ("130", "135", "138", "139", "150", "158", "186", "188", "199")


@st.composite
def cn_mobile_spellings(draw):
    national = draw(st.sampled_from(_MOBILE_PREFIXES)) + draw(st.text("0123456789", min_size=8, max_size=8))
    sep = draw(st.sampled_from(["", " ", "-", "."]))
    grouped = sep.join([national[:3], national[3:7], national[7:]])
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86", "86 ", "(+86)", "(+86) "]))
    text = prefix + grouped
    if draw(st.booleans()):
        text = text.translate(_FULL_WIDTH)
    return national, text


@NO_DB
@given(cn_mobile_spellings())
def test_any_spelling_of_a_cn_mobile_gives_its_e164(case):
    national, spelling = case
    assert normalize_phone(spelling) == "+86" + national


@NO_DB
@given(cn_mobile_spellings())
def test_phone_normalisation_is_idempotent(case):
    _, spelling = case
    once = normalize_phone(spelling)
    assert normalize_phone(once) == once


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("abc", "phone_not_a_number"),
        ("+86", "phone_not_a_number"),
        ("1380000111x", "phone_not_a_number"),
        ("12345", "phone_invalid_for_region"),
        ("1380000111", "phone_invalid_for_region"),  # one digit short
        ("138000011112", "phone_invalid_for_region"),  # one digit too many
        ("99999999999", "phone_invalid_for_region"),
    ],
)
def test_invalid_phone_raises_with_a_reason_that_does_not_echo_the_value(raw, reason):
    with pytest.raises(InvalidIdentifier) as info:
        normalize(ident(IdentifierType.PHONE, raw))
    assert info.value.reason == reason
    assert str(info.value) == reason
    assert raw not in info.value.reason


_wrong_length_mobiles = st.tuples(
    st.sampled_from(["13", "15", "18", "19"]),
    st.one_of(st.integers(3, 8), st.integers(10, 12)).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)),
).map("".join)


@NO_DB
@given(_wrong_length_mobiles)
def test_mobile_numbers_of_the_wrong_length_are_refused_without_echo(digits):
    # Not just any short digit string: "1095000" is a valid Beijing number (10 + 95000).
    with pytest.raises(InvalidIdentifier) as info:
        normalize_phone(digits)
    assert info.value.reason in PHONE_REASONS
    assert digits not in str(info.value)


# ---- other identifier types ------------------------------------------------------------------------


def test_email_is_lower_cased():
    assert norm(IdentifierType.EMAIL, "Zhang.San@QQ.COM").value == "zhang.san@qq.com"


def test_full_width_email_is_folded():
    assert norm(IdentifierType.EMAIL, "ｚｈａｎｇ＠ｑｑ．ｃｏｍ").value == "zhang@qq.com"


@pytest.mark.parametrize("raw", ["zhang", "zhang@qq", "@qq.com", "zhang san@qq.com"])
def test_malformed_email_is_refused(raw):
    with pytest.raises(InvalidIdentifier) as info:
        norm(IdentifierType.EMAIL, raw)
    assert info.value.reason == "email_malformed"


@settings(max_examples=200, database=None)
@given(st.emails())
def test_email_normalisation_is_idempotent(address):
    try:
        once = norm(IdentifierType.EMAIL, address).value
    except InvalidIdentifier:
        return  # a valid RFC address our stricter pattern refuses: nothing to be idempotent about
    assert norm(IdentifierType.EMAIL, once).value == once
    assert once == once.lower()


def test_vin_is_upper_cased_and_spaces_removed():
    assert norm(IdentifierType.VIN, "lsvaa4182e2 123456").value == "LSVAA4182E2123456"


@pytest.mark.parametrize(
    "raw",
    [
        "LSVAA4182E212345",  # 16 characters
        "LSVAA4182E21234567",  # 18 characters
        "LSVAI4182E2123456",  # I
        "LSVAO4182E2123456",  # O
        "LSVAQ4182E2123456",  # Q
        "LSVAA4182E212345-",
    ],
)
def test_malformed_vin_is_refused(raw):
    with pytest.raises(InvalidIdentifier) as info:
        norm(IdentifierType.VIN, raw)
    assert info.value.reason == "vin_malformed"


def test_device_id_is_lower_cased():
    assert norm(IdentifierType.DEVICE_ID, "AB12-CD34-EF56").value == "ab12-cd34-ef56"


def test_openid_keeps_its_namespace_so_two_apps_are_two_identifiers():
    a = norm(IdentifierType.WECHAT_OPENID, "oXyz123", "wx-app-a")
    b = norm(IdentifierType.WECHAT_OPENID, "oXyz123", "wx-app-b")
    assert a.namespace == "wx-app-a"
    assert a.identity_key == "wechat_openid|wx-app-a|oXyz123"
    assert a.identity_key != b.identity_key


def test_openid_namespace_is_stripped():
    assert norm(IdentifierType.WECHAT_OPENID, "oXyz123", " wx-app-a ").namespace == "wx-app-a"


def test_unionid_has_no_namespace():
    a = norm(IdentifierType.WECHAT_UNIONID, "uAbc", "wx-app-a")
    b = norm(IdentifierType.WECHAT_UNIONID, "uAbc", "wx-app-b")
    assert a.namespace == ""
    assert a.identity_key == b.identity_key == "wechat_unionid||uAbc"


def test_identity_key_separates_types_with_the_same_value():
    assert norm(IdentifierType.CRM_ID, "42").identity_key != norm(IdentifierType.MEMBER_ID, "42").identity_key


# ---- guardrails ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "13888888888"])
def test_known_test_numbers_are_blocked(raw):
    assert blocked_reason(norm(IdentifierType.PHONE, raw)) == "blocked_test_number"


@pytest.mark.parametrize("digit", "0123456789")
def test_one_repeated_digit_is_blocked(digit):
    value = "+86" + digit * 11
    assert blocked_reason(NormalizedIdentifier(IdentifierType.PHONE, value)) == "blocked_test_number"


def test_repeated_digit_phone_never_links_through_prepare():
    prepared = prepare(touchpoint(ident(IdentifierType.PHONE, "11111111111")))
    assert prepared.valid == ()
    assert len(prepared.rejected) == 1
    kind, reason = prepared.rejected[0]
    assert kind == "phone" and reason in PHONE_REASONS | {"blocked_test_number"}


@pytest.mark.parametrize(
    "kind, raw",
    [
        (IdentifierType.CRM_ID, "null"),
        (IdentifierType.CRM_ID, "NULL"),
        (IdentifierType.MEMBER_ID, "undefined"),
        (IdentifierType.DOUYIN_ID, "unknown"),
        (IdentifierType.DEVICE_ID, "None"),
        (IdentifierType.WECHAT_UNIONID, "-"),
    ],
)
def test_placeholders_are_blocked(kind, raw):
    assert blocked_reason(norm(kind, raw)) == "blocked_placeholder"


@pytest.mark.parametrize("raw", ["00000000-0000-0000-0000-000000000000", "0000000000000000"])
def test_all_zero_device_id_is_blocked(raw):
    assert blocked_reason(norm(IdentifierType.DEVICE_ID, raw)) == "blocked_zero_device"


@pytest.mark.parametrize(
    "kind, raw",
    [
        (IdentifierType.PHONE, "13800001111"),
        (IdentifierType.DEVICE_ID, "00000000-0000-0000-0000-000000000001"),
        (IdentifierType.EMAIL, "zhang@qq.com"),
        (IdentifierType.CRM_ID, "nullable-42"),
    ],
)
def test_real_values_are_not_blocked(kind, raw):
    assert blocked_reason(norm(kind, raw)) is None


# ---- masking ---------------------------------------------------------------------------------------


def test_mask_phone():
    assert mask(IdentifierType.PHONE, "+8613800001111") == "138****1111"


def test_mask_email():
    assert mask(IdentifierType.EMAIL, "zhang@qq.com") == "z***@qq.com"


def test_mask_other_values():
    assert mask(IdentifierType.DEVICE_ID, "abcdef123456") == "ab********56"
    assert mask(IdentifierType.CRM_ID, "abcdef") == "ab**ef"
    assert mask(IdentifierType.CRM_ID, "abcd") == "****"


@NO_DB
@given(cn_mobile_spellings())
def test_masked_phone_hides_the_middle_digits(case):
    national, spelling = case
    masked = mask(IdentifierType.PHONE, normalize_phone(spelling))
    assert masked == national[:3] + "****" + national[-4:]
    assert national not in masked


# ---- keys ------------------------------------------------------------------------------------------

MASTER = b"m" * 32
PHONE = NormalizedIdentifier(IdentifierType.PHONE, "+8613800001111")


def test_tenant_key_differs_per_tenant_and_is_stable():
    assert keys.tenant_key(MASTER, "a") == keys.tenant_key(MASTER, "a")
    assert keys.tenant_key(MASTER, "a") != keys.tenant_key(MASTER, "b")
    assert keys.tenant_key(MASTER, "a") != keys.tenant_key(b"x" * 32, "a")
    assert len(keys.tenant_key(MASTER, "a")) == 32


def test_identifier_hash_is_deterministic_per_tenant_and_differs_across_tenants():
    a, b = keys.tenant_key(MASTER, "a"), keys.tenant_key(MASTER, "b")
    assert keys.identifier_hash(a, PHONE) == keys.identifier_hash(a, PHONE)
    assert keys.identifier_hash(a, PHONE) != keys.identifier_hash(b, PHONE)
    digest = keys.identifier_hash(a, PHONE)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert "13800001111" not in digest


def test_identifier_hash_depends_on_namespace():
    key = keys.tenant_key(MASTER, "a")
    one = NormalizedIdentifier(IdentifierType.WECHAT_OPENID, "o1", "app-a")
    two = NormalizedIdentifier(IdentifierType.WECHAT_OPENID, "o1", "app-b")
    assert keys.identifier_hash(key, one) != keys.identifier_hash(key, two)


def test_new_one_id_is_deterministic_per_tenant_and_event():
    assert keys.new_one_id("demo", "e-1") == keys.new_one_id("demo", "e-1")
    assert keys.new_one_id("demo", "e-1") != keys.new_one_id("demo", "e-2")
    assert keys.new_one_id("demo", "e-1") != keys.new_one_id("other", "e-1")


def test_merge_id_is_deterministic_and_ordered():
    assert keys.merge_id("demo", "w", "l") == keys.merge_id("demo", "w", "l")
    assert keys.merge_id("demo", "w", "l") != keys.merge_id("demo", "l", "w")


# ---- stitching -------------------------------------------------------------------------------------


def test_prepare_dedups_spellings_of_the_same_identifier():
    prepared = prepare(
        touchpoint(
            ident(IdentifierType.PHONE, "13800001111"),
            ident(IdentifierType.PHONE, "+86 138 0000 1111"),
            ident(IdentifierType.EMAIL, "Zhang@qq.com"),
            ident(IdentifierType.EMAIL, "zhang@QQ.com"),
        )
    )
    assert prepared.valid == (
        NormalizedIdentifier(IdentifierType.PHONE, "+8613800001111"),
        NormalizedIdentifier(IdentifierType.EMAIL, "zhang@qq.com"),
    )
    assert prepared.rejected == ()


def test_prepare_keeps_openids_of_two_apps_apart():
    prepared = prepare(
        touchpoint(
            ident(IdentifierType.WECHAT_OPENID, "o1", "app-a"),
            ident(IdentifierType.WECHAT_OPENID, "o1", "app-b"),
        )
    )
    assert [i.namespace for i in prepared.valid] == ["app-a", "app-b"]


def test_prepare_lists_rejected_types_and_reasons_in_order():
    prepared = prepare(
        touchpoint(
            ident(IdentifierType.PHONE, "12345"),
            ident(IdentifierType.PHONE, "13800138000"),
            ident(IdentifierType.DEVICE_ID, "00000000-0000-0000-0000-000000000000"),
            ident(IdentifierType.CRM_ID, "null"),
            ident(IdentifierType.VIN, "LSVAQ4182E2123456"),
            ident(IdentifierType.MEMBER_ID, "m-42"),
        )
    )
    assert prepared.valid == (NormalizedIdentifier(IdentifierType.MEMBER_ID, "m-42"),)
    assert prepared.rejected == (
        ("phone", "phone_invalid_for_region"),
        ("phone", "blocked_test_number"),
        ("device_id", "blocked_zero_device"),
        ("crm_id", "blocked_placeholder"),
        ("vin", "vin_malformed"),
    )


def test_prepare_of_an_anonymous_touchpoint_is_empty():
    prepared = prepare(touchpoint())
    assert prepared.valid == () and prepared.rejected == ()


def test_split_winner_picks_the_oldest():
    old = Person("p-z", T0)
    young = Person("p-a", T0 + timedelta(days=1))
    winner, losers = split_winner([young, old])
    assert winner == old
    assert losers == [young]


def test_split_winner_breaks_ties_by_one_id():
    b, a = Person("p-b", T0), Person("p-a", T0)
    winner, losers = split_winner([b, a])
    assert winner == a and losers == [b]


def test_oldest_first_drops_duplicates():
    p = Person("p-1", T0)
    assert oldest_first([p, p, Person("p-2", T0)]) == [p, Person("p-2", T0)]


_persons = st.lists(
    st.builds(
        Person,
        one_id=st.text("abcdef0123", min_size=1, max_size=6),
        created_at=st.integers(0, 5).map(lambda d: T0 + timedelta(days=d)),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda p: p.one_id,
)


@NO_DB
@given(_persons, st.randoms(use_true_random=False))
def test_split_winner_is_independent_of_input_order(persons, rnd: random.Random):
    shuffled = list(persons)
    rnd.shuffle(shuffled)
    winner, losers = split_winner(persons)
    assert split_winner(shuffled) == (winner, losers)
    assert winner == min(persons, key=lambda p: (p.created_at, p.one_id))
    assert {winner.one_id, *(p.one_id for p in losers)} == {p.one_id for p in persons}
    assert len(losers) == len(persons) - 1


@NO_DB
@given(_persons.flatmap(lambda ps: st.permutations(ps).map(lambda perm: (ps, perm))))
def test_split_winner_same_for_every_permutation(case):
    persons, permutation = case
    assert split_winner(permutation) == split_winner(persons)


# ---- phone facts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("number, expected", [
    ("+8613912345678", ["mobile", "sequential_digits"]),
    ("+8613952718346", ["mobile"]),
    ("+8617012349876", ["mobile", "virtual_operator"]),
    ("+8616512349876", ["mobile", "virtual_operator"]),
    ("+862152718346", ["landline"]),
    ("+8613888888889", ["mobile", "repeated_digits"]),
    ("+14155552671", ["foreign", "mobile"]),
])
def test_phone_facts_describe_a_number_without_showing_it(number, expected):
    from services.identity.domain.phone_facts import phone_facts

    assert phone_facts(number) == expected
