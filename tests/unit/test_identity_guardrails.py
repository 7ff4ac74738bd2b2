"""Guardrails and the stitching plan, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.touchpoints import IdentifierType as T
from services.identity.domain.normalize import NormalizedIdentifier
from services.identity.domain.policy import IdentityPolicy, PolicyError, load_policies
from services.identity.domain.stitching import Person, Seen, plan, violation

T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = IdentityPolicy()


def seen(kind: T, value: str, owner: str | None = None, *, quarantined: bool = False) -> Seen:
    return Seen(f"{kind.value}:{value}", NormalizedIdentifier(kind, value), owner, quarantined)


def person(one_id: str, age_days: int = 0, **counts: int) -> Person:
    return Person(one_id, T0 - timedelta(days=age_days), counts)


def test_unknown_identifiers_make_a_new_person_with_all_of_them():
    decided = plan([seen(T.PHONE, "+8613800001111"), seen(T.DEVICE_ID, "d1")], {}, POLICY)
    assert decided.owner is None
    assert [s.identifier.type for s in decided.link] == [T.PHONE, T.DEVICE_ID]  # strongest first
    assert decided.held == () and decided.absorb == () and decided.conflict is None


def test_two_owners_merge_into_the_oldest_with_the_identifier_that_brought_the_loser():
    persons = {"a": person("a", 5, phone=1), "b": person("b", 1, wechat_unionid=1)}
    decided = plan([seen(T.PHONE, "p", "a"), seen(T.WECHAT_UNIONID, "u", "b")], persons, POLICY)
    assert decided.owner == "a"
    assert [(loser, via.identifier.type) for loser, via in decided.absorb] == [("b", T.WECHAT_UNIONID)]


def test_two_crm_ids_never_merge_and_the_touchpoint_stays_with_the_stronger_identifier():
    persons = {"a": person("a", 5, crm_id=1), "b": person("b", 1, crm_id=1)}
    decided = plan([seen(T.CRM_ID, "c1", "a"), seen(T.CRM_ID, "c2", "b")], persons, POLICY)
    assert decided.absorb == ()
    assert decided.conflict == "limit:crm_id"
    # Equal priority: the key order decides, the same way on every worker.
    assert decided.owner == "a" and [h.seen.owner for h in decided.held] == ["b"]


def test_exclusive_types_hold_even_when_the_limit_allows_two():
    policy = IdentityPolicy(limits={**POLICY.limits, T.CRM_ID: 2})
    persons = {"a": person("a", 5, crm_id=1), "b": person("b", 1, crm_id=1)}
    decided = plan([seen(T.CRM_ID, "c1", "a"), seen(T.CRM_ID, "c2", "b")], persons, policy)
    assert decided.absorb == () and decided.conflict == "exclusive:crm_id"


def test_a_fourth_phone_is_held_back_and_recorded():
    persons = {"a": person("a", phone=3)}
    decided = plan([seen(T.PHONE, "p1", "a"), seen(T.PHONE, "p4")], persons, POLICY)
    assert decided.owner == "a" and decided.link == ()
    assert [(h.seen.identifier.value, h.reason) for h in decided.held] == [("p4", "limit:phone")]


def test_too_many_phones_in_one_event_keep_the_limit_by_key_order():
    phones = [seen(T.PHONE, f"p{i}") for i in range(5)]
    decided = plan(phones, {}, POLICY)
    assert len(decided.link) == 3 and len(decided.held) == 2
    assert {h.reason for h in decided.held} == {"limit:phone"}


def test_a_person_over_a_lowered_limit_still_receives_touchpoints():
    persons = {"a": person("a", phone=5)}
    assert plan([seen(T.PHONE, "p1", "a")], persons, POLICY).held == ()


def test_a_shared_device_never_glues_two_persons_who_each_have_a_phone():
    persons = {"a": person("a", 3, phone=1, device_id=1)}
    decided = plan([seen(T.PHONE, "p2"), seen(T.DEVICE_ID, "tablet", "a")], persons, POLICY)
    assert decided.owner is None  # the new phone is a new person
    assert [s.identifier.value for s in decided.link] == ["p2"]
    assert [(h.seen.identifier.value, h.reason) for h in decided.held] == [("tablet", "weak_link:phone")]


def test_a_device_gives_an_anonymous_person_its_first_phone():
    persons = {"a": person("a", device_id=1)}
    decided = plan([seen(T.PHONE, "p1"), seen(T.DEVICE_ID, "d", "a")], persons, POLICY)
    assert decided.owner == "a" and [s.identifier.value for s in decided.link] == ["p1"] and decided.held == ()


def test_a_strong_identifier_may_bring_a_second_phone():
    persons = {"a": person("a", phone=1, wechat_unionid=1)}
    decided = plan([seen(T.WECHAT_UNIONID, "u", "a"), seen(T.PHONE, "p2")], persons, POLICY)
    assert decided.owner == "a" and len(decided.link) == 1 and decided.held == ()


def test_a_merge_over_the_size_cap_is_refused():
    policy = IdentityPolicy(max_identifiers=10)
    persons = {"a": person("a", 2, device_id=6), "b": person("b", 1, device_id=5)}
    decided = plan([seen(T.DEVICE_ID, "x", "a"), seen(T.DEVICE_ID, "y", "b")], persons,
                   IdentityPolicy(max_identifiers=10, limits={**policy.limits, T.DEVICE_ID: 100}))
    assert decided.absorb == () and decided.conflict == "merge_size_cap"


def test_quarantined_identifiers_never_link_and_are_no_new_conflict():
    persons = {"a": person("a", 2, device_id=1)}
    decided = plan([seen(T.PHONE, "p"), seen(T.DEVICE_ID, "hub", "a", quarantined=True)], persons, POLICY)
    assert decided.owner is None and decided.absorb == ()
    assert [h.reason for h in decided.held] == ["quarantined"] and decided.conflict is None


def test_violation_is_none_for_a_consistent_set():
    assert violation([seen(T.PHONE, "a"), seen(T.EMAIL, "e")], {}, POLICY) is None


@given(st.lists(st.tuples(st.sampled_from(list(T)), st.integers(0, 6), st.sampled_from([None, "a", "b", "c"])),
                max_size=12, unique_by=lambda x: (x[0], x[1])))
def test_the_plan_never_leaves_a_guardrail_broken_and_accounts_for_every_identifier(items):
    persons = {"a": person("a", 3, phone=1, crm_id=1), "b": person("b", 2, crm_id=1, device_id=2),
               "c": person("c", 1, email=1)}
    all_seen = [seen(kind, str(n), owner) for kind, n, owner in items]
    decided = plan(all_seen, persons, POLICY)
    assert violation(list(decided.kept), persons, POLICY) is None
    assert {s.key for s in decided.kept} | {h.seen.key for h in decided.held} == {s.key for s in all_seen}
    assert not ({s.key for s in decided.kept} & {h.seen.key for h in decided.held})
    owners = {s.owner for s in decided.kept if s.owner}
    assert {loser for loser, _ in decided.absorb} == owners - {decided.owner}


@given(st.permutations(range(6)))
def test_the_plan_does_not_depend_on_the_order_identifiers_arrive_in(order):
    persons = {"a": person("a", 3, phone=1), "b": person("b", 2, crm_id=1), "c": person("c", 1, crm_id=1)}
    items = [seen(T.PHONE, "p", "a"), seen(T.CRM_ID, "c1", "b"), seen(T.CRM_ID, "c2", "c"),
             seen(T.DEVICE_ID, "d"), seen(T.EMAIL, "e"), seen(T.PHONE, "q")]
    shuffled = [items[i] for i in order]
    assert plan(shuffled, persons, POLICY) == plan(items, persons, POLICY)


# ---- the policy file -------------------------------------------------------------------------------
def test_policy_file_overrides_defaults_per_tenant(tmp_path: Path):
    path = tmp_path / "identity.toml"
    path.write_text(
        '[default]\nhub_threshold = 4\n[default.limits]\nphone = 2\n'
        '[tenants.east]\nblocked = ["phone:+8613912345678"]\n[tenants.east.limits]\ndevice_id = 3\n',
        encoding="utf-8",
    )
    book = load_policies(path)
    assert book.default.limit(T.PHONE) == 2 and book.default.hub_threshold == 4
    east = book.for_tenant("east")
    assert east.limit(T.PHONE) == 2 and east.limit(T.DEVICE_ID) == 3  # inherits the file's default
    assert (T.PHONE, "+8613912345678") in east.blocked
    assert book.for_tenant("west") is book.default


@pytest.mark.parametrize("text, message", [
    ("[default]\nhub_limit = 3\n", "unknown keys"),
    ("[default.limits]\nfax = 2\n", "fax"),
    ("[default.limits]\nphone = 0\n", "at least 1"),
    ('[default]\npriority = ["phone"]\n', "every identifier type"),
])
def test_a_bad_policy_file_is_refused_with_the_reason(tmp_path: Path, text: str, message: str):
    path = tmp_path / "identity.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=message):
        load_policies(path)
