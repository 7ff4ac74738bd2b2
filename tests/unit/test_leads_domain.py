"""Leads domain: per-touchpoint verdict, lifecycle stages and the pure `apply` of a touchpoint to a lead."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.identity import RejectedIdentifier, TouchpointIdentified
from schemas.leads import Stage, Verdict
from schemas.touchpoints import EventType, Identifier, IdentifierType, TouchpointReceived
from services.leads.domain.lead import RECENT_EVENTS_KEPT, Lead, Transition, apply
from services.leads.domain.lifecycle import MAIN_PATH, next_stage
from services.leads.domain.verdict import assess

T0 = datetime(2025, 5, 20, 12, 0, tzinfo=timezone.utc)
NO_DB = settings(database=None)  # no .hypothesis/ example database on disk: these are pure tests
HUMAN_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.40"
PHONE = Identifier(type=IdentifierType.PHONE, value="+8613800001111")
DEVICE = Identifier(type=IdentifierType.DEVICE_ID, value="dev-1")
_UNSET = object()


def identified(
    event_type: EventType = EventType.PAGE_VIEWED,
    *,
    event_id: str = "e-1",
    at: datetime = T0,
    identifiers: tuple[Identifier, ...] = (DEVICE,),
    user_agent: str | None | object = _UNSET,
    attributes: dict | None = None,
    rejected: tuple[tuple[IdentifierType, str], ...] = (),
    store_id: str | None = None,
    one_id: str = "p-1",
) -> TouchpointIdentified:
    ua = HUMAN_UA if user_agent is _UNSET else user_agent
    tp = TouchpointReceived(
        event_id=event_id,
        event_type=event_type,
        occurred_at=at,
        tenant_id="demo",
        source={"system": "web", "channel": "site", "user_agent": ua, "store_id": store_id},
        identifiers=list(identifiers),
        attributes=attributes or {},
    )
    return TouchpointIdentified(
        tenant_id="demo",
        event_id=event_id,
        one_id=one_id,
        touchpoint=tp,
        rejected_identifiers=[RejectedIdentifier(type=t, reason=r) for t, r in rejected],
        identified_at=at,
    )


def clean_form(event_id: str = "e-form", at: datetime = T0, **kw) -> TouchpointIdentified:
    kw.setdefault("identifiers", (PHONE,))
    kw.setdefault("attributes", {"fill_seconds": 42})
    return identified(EventType.FORM_SUBMITTED, event_id=event_id, at=at, **kw)


# ---- verdict ---------------------------------------------------------------------------------------


def test_test_number_without_a_valid_phone_is_junk():
    event = clean_form(identifiers=(), rejected=((IdentifierType.PHONE, "blocked_test_number"),))
    assert assess(event) == (Verdict.JUNK, ["test_number"])


def test_invalid_phone_without_a_valid_phone_is_junk():
    event = clean_form(
        identifiers=(),
        rejected=(
            (IdentifierType.PHONE, "phone_not_a_number"),
            (IdentifierType.PHONE, "phone_invalid_for_region"),
            (IdentifierType.PHONE, "blocked_test_number"),
        ),
    )
    assert assess(event) == (Verdict.JUNK, ["invalid_phone", "test_number"])


def test_test_number_next_to_a_valid_phone_is_not_junk():
    event = clean_form(rejected=((IdentifierType.PHONE, "blocked_test_number"),))
    assert assess(event) == (Verdict.VALID, [])


def test_rejected_non_phone_identifiers_do_not_make_junk():
    event = identified(identifiers=(), rejected=((IdentifierType.DEVICE_ID, "blocked_zero_device"),))
    assert assess(event) == (Verdict.VALID, [])


@pytest.mark.parametrize(
    "ua",
    ["Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.4.0", "python-requests/2.31", "Mozilla/5.0 HeadlessChrome/120", "Scrapy/2.11"],
)
def test_bot_user_agent_on_a_form_is_suspect(ua):
    assert assess(clean_form(user_agent=ua)) == (Verdict.SUSPECT, ["bot_user_agent"])


@pytest.mark.parametrize("ua", [None, ""])
def test_missing_user_agent_on_a_form_is_suspect(ua):
    assert assess(clean_form(user_agent=ua)) == (Verdict.SUSPECT, ["missing_user_agent"])


@pytest.mark.parametrize("fill", [0, 1.5, 2.99])
def test_form_filled_faster_than_three_seconds_is_suspect(fill):
    assert assess(clean_form(attributes={"fill_seconds": fill})) == (Verdict.SUSPECT, ["form_too_fast"])


@pytest.mark.parametrize("fill", [3, 3.0, 60])
def test_form_filled_in_three_seconds_or_more_is_valid(fill):
    assert assess(clean_form(attributes={"fill_seconds": fill})) == (Verdict.VALID, [])


def test_form_fill_seconds_given_as_a_numeric_string_is_still_checked():
    # The contract accepts "1.0" for the float `fill_seconds` (typed_attributes() reads 1.0),
    # so the bot check must see 1.0 seconds too.
    event = clean_form(attributes={"fill_seconds": "1.0"})
    assert event.touchpoint.typed_attributes().fill_seconds == 1.0
    assert assess(event) == (Verdict.SUSPECT, ["form_too_fast"])


def test_suspect_reasons_accumulate():
    event = clean_form(user_agent="curl/8.4.0", attributes={"fill_seconds": 0.4})
    assert assess(event) == (Verdict.SUSPECT, ["bot_user_agent", "form_too_fast"])


def test_bot_signals_only_count_on_forms():
    event = identified(EventType.PAGE_VIEWED, user_agent="curl/8.4.0")
    assert assess(event) == (Verdict.VALID, [])
    assert assess(identified(EventType.CHAT_MESSAGE, user_agent=None)) == (Verdict.VALID, [])


# ---- lifecycle -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "current, event_type, reachable, expected",
    [
        (Stage.ANONYMOUS, EventType.PAGE_VIEWED, False, Stage.ANONYMOUS),
        (Stage.ANONYMOUS, EventType.WECHAT_FOLLOWED, False, Stage.FOLLOWER),
        (Stage.ANONYMOUS, EventType.FORM_SUBMITTED, True, Stage.LEAD),
        (Stage.ANONYMOUS, EventType.FORM_SUBMITTED, False, Stage.CONTACT),
        (Stage.FOLLOWER, EventType.CALL_LOGGED, False, Stage.CONTACT),
        (Stage.CONTACT, EventType.FORM_SUBMITTED, True, Stage.LEAD),
        (Stage.LEAD, EventType.TEST_DRIVE_BOOKED, True, Stage.OPPORTUNITY),
        (Stage.OPPORTUNITY, EventType.PAGE_VIEWED, True, Stage.OPPORTUNITY),
        (Stage.OPPORTUNITY, EventType.FORM_SUBMITTED, True, Stage.OPPORTUNITY),
        (Stage.OPPORTUNITY, EventType.WECHAT_FOLLOWED, True, Stage.OPPORTUNITY),
        (Stage.OPPORTUNITY, EventType.PURCHASE_COMPLETED, True, Stage.CUSTOMER),
        (Stage.CUSTOMER, EventType.SERVICE_VISITED, True, Stage.LOYAL),
        (Stage.CUSTOMER, EventType.REFERRAL_MADE, True, Stage.LOYAL),
        (Stage.CUSTOMER, EventType.PRICE_INQUIRED, True, Stage.CUSTOMER),
        (Stage.LOYAL, EventType.ORDER_PLACED, True, Stage.LOYAL),
        (Stage.LEAD, EventType.SERVICE_VISITED, True, Stage.LEAD),  # loyalty needs a purchase first
        (Stage.ANONYMOUS, EventType.REFERRAL_MADE, False, Stage.ANONYMOUS),
        (Stage.DORMANT, EventType.PAGE_VIEWED, True, Stage.DORMANT),
        (Stage.LOST, EventType.FORM_SUBMITTED, True, Stage.LEAD),
        (Stage.LOST, EventType.FORM_SUBMITTED, False, Stage.CONTACT),
    ],
)
def test_next_stage(current, event_type, reachable, expected):
    assert next_stage(current, event_type, reachable) is expected


@NO_DB
@given(st.sampled_from(MAIN_PATH), st.sampled_from(list(EventType)), st.booleans())
def test_stages_on_the_main_path_only_move_forward(current, event_type, reachable):
    after = next_stage(current, event_type, reachable)
    assert after in MAIN_PATH
    assert MAIN_PATH.index(after) >= MAIN_PATH.index(current)


@NO_DB
@given(st.sampled_from(MAIN_PATH), st.sampled_from(list(EventType)))
def test_an_unreachable_person_never_becomes_a_lead(current, event_type):
    assert next_stage(current, event_type, False) is not Stage.LEAD or current is Stage.LEAD


# ---- apply -----------------------------------------------------------------------------------------


def test_first_event_creates_the_lead_and_records_the_initial_transition():
    lead, transition, applied = apply(None, clean_form(store_id="s-1", attributes={"fill_seconds": 30, "city": "上海", "name": "张三"}))
    assert applied is True
    assert (lead.tenant_id, lead.one_id, lead.version) == ("demo", "p-1", 1)
    assert lead.stage is Stage.LEAD and lead.verdict is Verdict.VALID and lead.reasons == ()
    assert lead.reachable is True
    assert (lead.store_id, lead.city, lead.name) == ("s-1", "上海", "张三")
    assert lead.touchpoints == 1
    assert lead.first_seen_at == lead.last_seen_at == T0
    assert lead.recent_event_ids == ("e-form",)
    assert transition == Transition(None, Stage.LEAD, T0, "e-form", EventType.FORM_SUBMITTED)


def test_first_event_records_a_transition_even_without_a_stage_change():
    lead, transition, _ = apply(None, identified(EventType.PAGE_VIEWED))
    assert lead.stage is Stage.ANONYMOUS
    assert transition == Transition(None, Stage.ANONYMOUS, T0, "e-1", EventType.PAGE_VIEWED)


def test_version_and_touchpoints_grow_by_one_per_new_event():
    lead = None
    for n in range(1, 6):
        lead, _, applied = apply(lead, identified(event_id=f"e-{n}", at=T0 + timedelta(minutes=n)))
        assert applied
        assert lead.version == n and lead.touchpoints == n


def test_replay_of_the_same_event_is_not_applied_and_changes_nothing():
    lead, _, _ = apply(None, identified(event_id="e-1"))
    lead, _, _ = apply(lead, clean_form(event_id="e-2", at=T0 + timedelta(hours=1)))
    again, transition, applied = apply(lead, identified(event_id="e-1", at=T0 + timedelta(days=3)))
    assert applied is False
    assert transition is None
    assert again == lead
    assert again.version == 2 and again.last_seen_at == T0 + timedelta(hours=1)


def test_first_and_last_seen_follow_occurred_at_not_arrival_order():
    lead, _, _ = apply(None, identified(event_id="e-mid", at=T0))
    lead, _, _ = apply(lead, identified(event_id="e-late", at=T0 + timedelta(days=2)))
    lead, _, _ = apply(lead, identified(event_id="e-early", at=T0 - timedelta(days=5)))
    assert lead.first_seen_at == T0 - timedelta(days=5)
    assert lead.last_seen_at == T0 + timedelta(days=2)
    assert lead.touchpoints == 3


def test_transition_only_on_stage_change_after_the_first_event():
    lead, _, _ = apply(None, clean_form(event_id="e-1"))
    lead, transition, _ = apply(lead, identified(EventType.PAGE_VIEWED, event_id="e-2"))
    assert transition is None and lead.stage is Stage.LEAD
    lead, transition, _ = apply(lead, identified(EventType.TEST_DRIVE_BOOKED, event_id="e-3", at=T0 + timedelta(hours=1)))
    assert transition == Transition(Stage.LEAD, Stage.OPPORTUNITY, T0 + timedelta(hours=1), "e-3", EventType.TEST_DRIVE_BOOKED)
    lead, transition, _ = apply(lead, identified(EventType.PAGE_VIEWED, event_id="e-4"))
    assert transition is None and lead.stage is Stage.OPPORTUNITY


def test_form_without_phone_makes_a_contact_then_a_later_phone_makes_it_a_lead():
    lead, _, _ = apply(None, clean_form(event_id="e-1", identifiers=(DEVICE,)))
    assert lead.stage is Stage.CONTACT and lead.reachable is False
    lead, transition, _ = apply(lead, identified(EventType.CALL_LOGGED, event_id="e-2", identifiers=(PHONE,),
                                                 attributes={"direction": "inbound", "duration_s": 60, "connected": True}))
    assert lead.stage is Stage.LEAD and lead.reachable is True
    assert transition.from_stage is Stage.CONTACT and transition.to_stage is Stage.LEAD


def test_reachable_sticks_once_a_phone_was_seen():
    lead, _, _ = apply(None, clean_form(event_id="e-1"))
    lead, _, _ = apply(lead, identified(event_id="e-2", identifiers=()))
    assert lead.reachable is True


def test_verdict_stays_valid_once_a_valid_contact_was_seen():
    lead, _, _ = apply(None, clean_form(event_id="e-1"))
    lead, _, _ = apply(lead, clean_form(event_id="e-2", user_agent="curl/8.4.0"))
    assert lead.verdict is Verdict.VALID and lead.reasons == ()
    lead, _, _ = apply(lead, clean_form(event_id="e-3", identifiers=(), rejected=((IdentifierType.PHONE, "blocked_test_number"),)))
    assert lead.verdict is Verdict.VALID and lead.reasons == ()


def test_junk_sticks_until_a_valid_contact_arrives():
    junk = clean_form(event_id="e-1", identifiers=(), rejected=((IdentifierType.PHONE, "blocked_test_number"),))
    lead, _, _ = apply(None, junk)
    assert (lead.verdict, lead.reasons) == (Verdict.JUNK, ("test_number",))
    lead, _, _ = apply(lead, identified(EventType.PAGE_VIEWED, event_id="e-2"))
    assert (lead.verdict, lead.reasons) == (Verdict.JUNK, ("test_number",))
    lead, _, _ = apply(lead, clean_form(event_id="e-3"))
    assert (lead.verdict, lead.reasons) == (Verdict.VALID, ())


def test_suspect_sticks_and_keeps_its_reasons_until_a_valid_contact_arrives():
    lead, _, _ = apply(None, clean_form(event_id="e-1", user_agent="curl/8.4.0"))
    assert (lead.verdict, lead.reasons) == (Verdict.SUSPECT, ("bot_user_agent",))
    lead, _, _ = apply(lead, identified(EventType.PAGE_VIEWED, event_id="e-2"))
    assert (lead.verdict, lead.reasons) == (Verdict.SUSPECT, ("bot_user_agent",))
    lead, _, _ = apply(lead, clean_form(event_id="e-3"))
    assert (lead.verdict, lead.reasons) == (Verdict.VALID, ())


def test_profile_fields_keep_the_last_known_value():
    lead, _, _ = apply(None, identified(event_id="e-1", store_id="s-1", attributes={"product": "SUV", "city": "北京"}))
    lead, _, _ = apply(lead, identified(event_id="e-2", attributes={"car_model": "Model Y", "product": "SUV"}))
    assert (lead.store_id, lead.city, lead.product) == ("s-1", "北京", "Model Y")
    lead, _, _ = apply(lead, identified(event_id="e-3", store_id="s-2"))
    assert (lead.store_id, lead.city, lead.product) == ("s-2", "北京", "Model Y")


def test_recent_event_ids_are_bounded():
    lead = None
    for n in range(RECENT_EVENTS_KEPT + 5):
        lead, _, _ = apply(lead, identified(event_id=f"e-{n}"))
    assert len(lead.recent_event_ids) == RECENT_EVENTS_KEPT
    assert lead.recent_event_ids[-1] == f"e-{RECENT_EVENTS_KEPT + 4}"
    assert lead.version == RECENT_EVENTS_KEPT + 5


def test_snapshot_mirrors_the_lead():
    lead, _, _ = apply(None, clean_form(store_id="s-1"))
    snap = lead.snapshot()
    assert snap.verdict is Verdict.VALID and snap.stage is Stage.LEAD and snap.reachable is True
    assert snap.store_id == "s-1" and snap.touchpoints == 1
    assert snap.first_seen_at == snap.last_seen_at == T0


def test_apply_does_not_mutate_the_input_lead():
    before = Lead(tenant_id="demo", one_id="p-1")
    after, _, _ = apply(before, clean_form())
    assert before == Lead(tenant_id="demo", one_id="p-1")
    assert after is not before


def test_phone_brands_are_not_bots_but_crawlers_are():
    from services.leads.domain.verdict import BOT_USER_AGENT

    assert not BOT_USER_AGENT.search("Mozilla/5.0 (Linux; Android 13; CUBOT KingKong)")
    for ua in ("Googlebot/2.1", "Mozilla/5.0 (compatible; Baiduspider/2.0)", "python-requests/2.31", "curl/8.4"):
        assert BOT_USER_AGENT.search(ua), ua
