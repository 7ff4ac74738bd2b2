"""Quality verdict rules of one touchpoint: each rule on both sides of its threshold, the policy file,
routing, disposable domains, and that `assess` never fails on anything."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.identity import LinkedIdentifier, RejectedIdentifier
from schemas.leads import Route, Verdict
from schemas.touchpoints import EventType, IdentifierType
from services.leads.domain.quality import (
    JUNK_REASONS,
    REASONS,
    QualityInput,
    QualityPolicy,
    QualityPolicyError,
    assess,
    is_disposable,
    route_of,
)

NO_DB = settings(database=None)
UA = "Mozilla/5.0 (Linux; Android 14; CUBOT KingKong) AppleWebKit/537.36 Chrome/124 Mobile"
PHONE = LinkedIdentifier(type=IdentifierType.PHONE, link_id="ph-1", masked="139****0001", facts=["mobile"])
POLICY = QualityPolicy()


def q(**kw) -> QualityInput:
    base = {"event_type": EventType.FORM_SUBMITTED, "user_agent": UA, "fill_seconds": 20.0, "identifiers": (PHONE,)}
    return QualityInput(**{**base, **kw})


def email(domain: str) -> LinkedIdentifier:
    return LinkedIdentifier(type=IdentifierType.EMAIL, link_id="em-1", masked=f"a***@{domain}")


def test_a_clean_form_is_valid_without_reasons():
    assert assess(q()) == assess(q(), POLICY)
    assert assess(q()).verdict is Verdict.VALID and assess(q()).reasons == ()


@pytest.mark.parametrize("problem", ["invalid_phone", "test_number"])
def test_an_unusable_only_phone_is_junk(problem):
    got = assess(q(identifiers=(), problems=(problem,)))
    assert (got.verdict, got.reasons) == (Verdict.JUNK, (problem,))


def test_an_e_mail_does_not_save_a_touchpoint_whose_phones_are_all_bad():
    # The rule is about phones: a lead nobody can call is junk, whatever else it carries.
    got = assess(q(identifiers=(email("qq.com"),), problems=("invalid_phone",)))
    assert (got.verdict, got.reasons) == (Verdict.JUNK, ("invalid_phone",))


def test_a_page_view_without_contacts_is_valid():
    got = assess(q(event_type=EventType.PAGE_VIEWED, identifiers=(), user_agent=None, fill_seconds=None))
    assert (got.verdict, got.reasons) == (Verdict.VALID, ())


def test_a_bad_phone_next_to_a_good_one_is_not_junk():
    assert assess(q(problems=("test_number",))).verdict is Verdict.VALID


def test_a_phone_reported_invalid_is_junk_and_another_good_phone_saves_the_touchpoint():
    got = assess(q(bad_phone_link_ids=frozenset({"ph-1"})))
    assert (got.verdict, got.reasons) == (Verdict.JUNK, ("phone_marked_invalid",))
    other = LinkedIdentifier(type=IdentifierType.PHONE, link_id="ph-2", masked="139****0002", facts=["mobile"])
    assert assess(q(identifiers=(PHONE, other), bad_phone_link_ids=frozenset({"ph-1"}))).verdict is Verdict.VALID


@pytest.mark.parametrize(("field", "reason", "limit"), [
    ("device_forms", "device_velocity", POLICY.max_forms_per_device),
    ("ip_forms", "ip_velocity", POLICY.max_forms_per_ip),
])
def test_velocity_beyond_the_limit_is_junk(field, reason, limit):
    assert assess(q(**{field: limit})).verdict is Verdict.VALID
    got = assess(q(**{field: limit + 1}))
    assert (got.verdict, got.reasons) == (Verdict.JUNK, (reason,))


@pytest.mark.parametrize("ua", ["python-requests/2.31", "curl/8.4.0", "okhttp/4.9.3", "Googlebot/2.1", "HeadlessChrome/120"])
def test_script_user_agents_on_forms_are_suspect(ua):
    assert assess(q(user_agent=ua)).reasons == ("bot_user_agent",)


@pytest.mark.parametrize("ua", [None, "", "   "])
def test_a_form_without_a_user_agent_is_suspect(ua):
    assert assess(q(user_agent=ua)).reasons == ("missing_user_agent",)


def test_phone_brands_are_not_bots():
    assert assess(q(user_agent=UA)).verdict is Verdict.VALID


@pytest.mark.parametrize(("fill", "suspect"), [(0.0, True), (2.99, True), (3.0, False), (60.0, False), (None, False)])
def test_form_fill_time(fill, suspect):
    assert ("form_too_fast" in assess(q(fill_seconds=fill)).reasons) is suspect


def test_browser_checks_apply_to_forms_only():
    for kind in (EventType.CALL_LOGGED, EventType.PAGE_VIEWED, EventType.CHAT_MESSAGE):
        assert assess(q(event_type=kind, user_agent=None, fill_seconds=0.1)).verdict is Verdict.VALID


def test_non_browser_checks_apply_to_calls_too():
    call = q(event_type=EventType.CALL_LOGGED, user_agent=None, fill_seconds=None)
    assert assess(call).verdict is Verdict.VALID
    assert assess(q(event_type=EventType.CALL_LOGGED, user_agent=None, fill_seconds=None,
                    identifiers=(PHONE, email("mailinator.com")), problems=("virtual_operator",))).reasons == (
        "disposable_email", "virtual_operator")


def test_disposable_email_is_suspect_unless_allowed():
    assert assess(q(identifiers=(PHONE, email("mailinator.com")))).reasons == ("disposable_email",)
    assert assess(q(identifiers=(PHONE, email("MAILINATOR.COM")))).reasons == ("disposable_email",)
    assert assess(q(identifiers=(PHONE, email("qq.com")))).verdict is Verdict.VALID
    own = QualityPolicy(extra_disposable_domains=frozenset({"tmp.example.cn"}), allowed_domains=frozenset({"yopmail.com"}))
    assert assess(q(identifiers=(PHONE, email("tmp.example.cn"))), own).reasons == ("disposable_email",)
    assert assess(q(identifiers=(PHONE, email("yopmail.com"))), own).verdict is Verdict.VALID


def test_subdomains_of_disposable_domains_are_disposable():
    assert is_disposable("x.mailinator.com", POLICY) and not is_disposable("com", POLICY)
    assert not is_disposable("", POLICY) and not is_disposable("mailinator.com.cn", POLICY)


def test_disposable_detection_ignores_case_and_trailing_dots_however_the_policy_was_built():
    assert is_disposable(" MailInator.COM. ", POLICY)
    own = QualityPolicy(extra_disposable_domains=frozenset({"TMP.Example.CN."}), allowed_domains=frozenset({"YOPMAIL.com"}))
    assert is_disposable("tmp.example.cn", own) and is_disposable("Box.TMP.example.cn", own)
    assert not is_disposable("yopmail.com", own) and not is_disposable("a.YopMail.com", own)
    assert is_disposable("yopmail.com", POLICY)


@pytest.mark.parametrize("risk", ["virtual_operator", "sequential_digits", "repeated_digits", "foreign_phone"])
def test_risky_phones_are_suspect_by_default_and_only_problems_when_the_tenant_says_so(risk):
    assert assess(q(problems=(risk,))).reasons == (risk,)
    assert assess(q(problems=(risk,)), QualityPolicy(risk_is_suspect=False)).verdict is Verdict.VALID


@pytest.mark.parametrize("reason", ["limit:phone", "exclusive:crm_id", "weak_link:device_id", "merge_size_cap", "quarantined"])
def test_identity_guardrails_make_a_conflict(reason):
    got = assess(q(rejected=(RejectedIdentifier(type=IdentifierType.PHONE, reason=reason),)))
    assert got.reasons == ("identity_conflict",)


def test_an_invalid_value_rejected_by_identity_is_not_a_conflict():
    rejected = (RejectedIdentifier(type=IdentifierType.VIN, reason="vin_malformed"),)
    assert assess(q(rejected=rejected)).verdict is Verdict.VALID


def test_junk_outranks_suspicion_and_reasons_are_sorted():
    got = assess(q(user_agent=None, fill_seconds=0.5, device_forms=99, ip_forms=99))
    assert (got.verdict, got.reasons) == (Verdict.JUNK, ("device_velocity", "ip_velocity"))
    assert assess(q(user_agent="curl/8", fill_seconds=0.5)).reasons == ("bot_user_agent", "form_too_fast")


@pytest.mark.parametrize(("verdict", "to_verification", "route"), [
    (Verdict.VALID, True, "sales"),
    (Verdict.VALID, False, "sales"),
    (Verdict.SUSPECT, True, "verification"),
    (Verdict.SUSPECT, False, "sales"),
    (Verdict.JUNK, True, "none"),
    (Verdict.JUNK, False, "none"),
])
def test_routes(verdict, to_verification, route):
    got = route_of(verdict, QualityPolicy(suspect_to_verification=to_verification))
    assert got == route and got is Route(route)


def test_policy_from_mapping():
    policy = QualityPolicy.from_mapping({"velocity_window_minutes": 30, "max_forms_per_device": 5,
                                         "allowed_domains": ["Example.COM "], "suspect_to_verification": False})
    assert policy.velocity_window == timedelta(minutes=30) and policy.max_forms_per_device == 5
    assert policy.allowed_domains == frozenset({"example.com"}) and not policy.suspect_to_verification


@pytest.mark.parametrize(("data", "names"), [
    ({"max_forms_per_devise": 3}, "max_forms_per_devise"),
    ({"max_forms_per_device": 0}, "max_forms_per_device"),
    ({"max_forms_per_ip": "5"}, "max_forms_per_ip"),
    ({"velocity_window_minutes": 0}, "velocity_window_minutes"),
    ({"allowed_domains": "a.com"}, "allowed_domains"),
    ({"risk_is_suspect": "yes"}, "risk_is_suspect"),
    ({"allowed_domains": 5}, "allowed_domains"),
    ({"extra_disposable_domains": ["a.com", 1]}, "extra_disposable_domains"),
    ({"velocity_window_minutes": math.nan}, "velocity_window_minutes"),
    ({"velocity_window_minutes": 1e300}, "velocity_window_minutes"),
    ({"velocity_window_minutes": 7 * 24 * 60 + 1}, "velocity_window_minutes"),
    ({"min_human_fill_seconds": math.inf}, "min_human_fill_seconds"),
    ({"min_human_fill_seconds": -1}, "min_human_fill_seconds"),
    ({"min_human_fill_seconds": True}, "min_human_fill_seconds"),
])
def test_bad_policies_name_the_key(data, names):
    with pytest.raises(QualityPolicyError, match=names):
        QualityPolicy.from_mapping(data)


def test_policy_limits_are_inclusive():
    policy = QualityPolicy.from_mapping({"velocity_window_minutes": 7 * 24 * 60, "min_human_fill_seconds": 0,
                                         "max_forms_per_device": 1, "max_forms_per_ip": 1})
    assert policy.velocity_window == timedelta(days=7) and policy.min_human_fill_seconds == 0.0
    assert QualityPolicy.from_mapping({}) == POLICY


def test_every_reason_is_explained():
    assert all(text and not text.endswith(".") for text in REASONS.values())


TEXT = st.one_of(st.none(), st.text(max_size=40))
KNOWN_PROBLEMS = ["invalid_phone", "test_number", "virtual_operator", "sequential_digits", "repeated_digits",
                  "foreign_phone", "landline_only", "phone_over_limit", "phone_quarantined", "unknown_city"]
GUARDRAILS = ["limit:phone", "exclusive:crm_id", "weak_link:phone", "merge_size_cap", "quarantined",
              "blocked_test_number", "phone_not_a_number", "email_malformed", "blocked_by_tenant"]
IDENTIFIERS = st.builds(
    LinkedIdentifier,
    type=st.sampled_from(list(IdentifierType)),
    link_id=st.sampled_from(["ph-1", "ph-2", "em-1", "x"]),
    masked=st.one_of(st.text(max_size=30), st.builds("a***@{}".format, st.sampled_from(
        ["mailinator.com", "qq.com", "MAILINATOR.com.", "", "@", "x.yopmail.com"]))),
)
POLICIES = st.builds(
    QualityPolicy,
    min_human_fill_seconds=st.floats(0, 600),
    max_forms_per_device=st.integers(1, 50),
    max_forms_per_ip=st.integers(1, 50),
    suspect_to_verification=st.booleans(),
    extra_disposable_domains=st.frozensets(st.text(max_size=12), max_size=3),
    allowed_domains=st.frozensets(st.sampled_from(["mailinator.com", "yopmail.com", "qq.com"]), max_size=2),
    risk_is_suspect=st.booleans(),
)


@NO_DB
@given(
    st.sampled_from(list(EventType)), TEXT, st.one_of(st.none(), st.floats(allow_nan=True)),
    st.lists(st.one_of(st.sampled_from(KNOWN_PROBLEMS), st.text(max_size=20))),
    st.lists(IDENTIFIERS, max_size=4),
    st.lists(st.one_of(st.sampled_from(GUARDRAILS), st.text(min_size=1, max_size=20))),
    st.integers(-5, 1000), st.integers(-5, 1000), st.frozensets(st.sampled_from(["ph-1", "ph-2", "zz"])), POLICIES,
)
def test_assess_never_fails_and_only_gives_known_reasons(kind, ua, fill, problems, identifiers, rejections,
                                                        devices, ips, bad, policy):
    got = assess(QualityInput(
        event_type=kind, user_agent=ua, fill_seconds=fill, problems=tuple(problems), identifiers=tuple(identifiers),
        rejected=tuple(RejectedIdentifier(type=IdentifierType.PHONE, reason=r) for r in rejections),
        device_forms=devices, ip_forms=ips, bad_phone_link_ids=bad), policy)
    assert set(got.reasons) <= set(REASONS) and list(got.reasons) == sorted(set(got.reasons))
    assert (got.verdict is Verdict.VALID) == (got.reasons == ())
    # Junk speaks only of junk; suspect never mentions a junk reason.
    if got.verdict is Verdict.JUNK:
        assert got.reasons and set(got.reasons) <= JUNK_REASONS
    else:
        assert not set(got.reasons) & JUNK_REASONS
    assert route_of(got.verdict, policy) in set(Route)


def test_docs_explain_every_reason_to_ops():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "leads.md").read_text(encoding="utf-8")
    missing = [reason for reason in REASONS if f"`{reason}`" not in text]
    assert not missing, f"docs/leads.md does not explain {missing}"
