"""The identity graph against the real store: guardrails, explanations, splits, erasure, reveals."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from schemas.identity import ErasureRequested, PersonErased, PersonSplit, SplitRequested
from schemas.touchpoints import EventType, Identifier
from services.identity.domain.policy import IdentityPolicy, PolicyBook
from services.identity.operations import split_one_id
from tests.integration.identity_kit import T0, event, make_service, merges_of, one_id_of, operations

ALL_COLLECTIONS = ("identity_links", "identity_persons", "identity_receipts", "identity_emitted", "identity_attempts",
                   "identity_merges", "identity_conflicts", "identity_commands", "identity_profiles",
                   "identity_blocks", "identity_reviews")


@pytest.fixture
async def service(db):
    return await make_service(db, PolicyBook(IdentityPolicy(hub_threshold=3)))


@pytest.fixture
def ops(service):
    return operations(service)


def phone(n: int) -> tuple[str, str]:
    return ("phone", f"1390000{n:04d}")


async def resolve(service, kind: str, value: str, tenant: str = "t1") -> str | None:
    return await service.resolve(tenant, Identifier(type=kind, value=value, namespace="wx_app" if kind == "wechat_openid" else None))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_two_crm_ids_never_merge_and_the_conflict_is_listed(service):
    conflicts_before = metric("leadflow_identity_conflicts_total", tenant="t1", rule="limit")
    a = one_id_of(await service.identify(event("e1", ("crm_id", "CRM-1"), phone(1))))
    b = one_id_of(await service.identify(event("e2", ("crm_id", "CRM-2"), phone(2))))
    bridge = await service.identify(event("e3", ("crm_id", "CRM-1"), ("crm_id", "CRM-2")))
    assert merges_of(bridge) == [] and one_id_of(bridge) == a
    assert await resolve(service, "crm_id", "CRM-2") == b
    rejected = next(o.value for o in bridge.outgoing).rejected_identifiers
    assert [(r.type, r.reason) for r in rejected] == [("crm_id", "limit:crm_id")]
    [conflict] = await service.conflicts("t1")
    assert conflict["reason"] == "limit:crm_id" and conflict["event_id"] == "e3"
    assert conflict["persons"] == sorted([a, b])
    assert [h["owner"] for h in conflict["held"]] == [b] and "CRM-2" not in str(conflict)
    assert metric("leadflow_identity_conflicts_total", tenant="t1", rule="limit") == conflicts_before + 1


async def test_a_value_that_cannot_be_normalised_is_rejected_with_a_reason_and_counted(service):
    before = metric("leadflow_identity_identifiers_rejected_total", tenant="t1", type="vin", reason="vin_malformed")
    handled = await service.identify(event("e1", phone(1), ("vin", "LSVAA4182E2O23456")))  # an O: never in a VIN
    identified = next(o.value for o in handled.outgoing)
    assert [(r.type, r.reason) for r in identified.rejected_identifiers] == [("vin", "vin_malformed")]
    assert [i.type for i in identified.identifiers] == ["phone"]
    assert metric("leadflow_identity_identifiers_rejected_total", tenant="t1", type="vin",
                  reason="vin_malformed") == before + 1


async def test_a_shared_tablet_glues_nobody_and_is_quarantined_as_a_hub(service):
    first = one_id_of(await service.identify(event("c1", phone(1), ("device_id", "store-tablet"))))
    others = [one_id_of(await service.identify(event(f"c{n}", phone(n), ("device_id", "store-tablet"))))
              for n in range(2, 5)]
    assert len({first, *others}) == 4  # four customers stay four persons
    assert await resolve(service, "device_id", "store-tablet") == first
    [hub] = await service.quarantined("t1")
    assert hub["type"] == "device_id" and hub["one_id"] == first and hub["seen_with"] >= 2
    # Once quarantined it links nothing, not even to a brand-new person.
    later = await service.identify(event("c9", ("device_id", "store-tablet"), phone(9)))
    assert one_id_of(later) not in {first, *others}
    rejected = next(o.value for o in later.outgoing).rejected_identifiers
    assert [(r.type, r.reason) for r in rejected] == [("device_id", "quarantined")]


async def test_a_phone_beyond_the_limit_is_held_back_not_linked(service):
    owner = one_id_of(await service.identify(event("e1", ("wechat_unionid", "u1"), phone(1), phone(2), phone(3))))
    late = await service.identify(event("e2", ("wechat_unionid", "u1"), phone(4)))
    assert one_id_of(late) == owner
    assert await resolve(service, "phone", "13900000004") is None
    identified = next(o.value for o in late.outgoing)
    assert [i.type for i in identified.identifiers] == ["wechat_unionid"]
    assert [i.value for i in identified.touchpoint.identifiers] == ["**"]  # masked: no raw value leaves identity
    assert "13900000004" not in identified.model_dump_json() and '"u1"' not in identified.model_dump_json()



async def test_explain_tells_why_each_identifier_belongs(service):
    a = one_id_of(await service.identify(event("e1", phone(1))))
    await service.identify(event("e2", ("wechat_unionid", "u1"), ("email", "zhang@qq.com")))
    await service.identify(event("e3", phone(1), ("wechat_unionid", "u1")))
    told = await service.explain("t1", a)
    by_type = {i["type"]: i for i in told["identifiers"]}
    assert by_type["phone"]["cause"]["rule"] == "first_seen" and by_type["phone"]["value"] == "139****0001"
    assert by_type["email"]["cause"] == {"rule": "co_occurred", "via_link_id": by_type["wechat_unionid"]["link_id"],
                                         "via_type": "wechat_unionid", "command_id": None, "split_from": None}
    [merge] = told["merges"]
    assert merge["winner"] == a and merge["cause"] == "shared_identifier"
    assert merge["cause_identifier_type"] == "wechat_unionid" and merge["event_id"] == "e3"
    assert "13900000001" not in str(told) and "zhang@qq.com" not in str(told)


async def test_a_split_undoes_a_wrong_merge_and_replays_change_nothing(service, ops):
    a = one_id_of(await service.identify(event("e1", phone(1))))
    await service.identify(event("e2", ("wechat_unionid", "u1")))
    await service.identify(event("e3", ("wechat_unionid", "u1"), ("email", "li@163.com")))
    await service.identify(event("e4", phone(1), ("wechat_unionid", "u1")))  # the wrong merge
    assert await resolve(service, "email", "li@163.com") == a

    told = await service.explain("t1", a)
    move = [i["link_id"] for i in told["identifiers"] if i["type"] in ("wechat_unionid", "email")]
    command = SplitRequested(command_id="cmd-1", tenant_id="t1", one_id=a, link_ids=move, reason="two people",
                             requested_by="ops", requested_at=T0)
    handled = await ops.on_command(command)
    [split] = [o.value for o in handled.outgoing]
    assert isinstance(split, PersonSplit)
    new = split_one_id("t1", "cmd-1")
    assert (split.source, split.new_one_id) == (a, new)
    assert split.moved_event_ids == ["e2", "e3"]  # e4 carried the phone too: it stays with a
    assert await resolve(service, "wechat_unionid", "u1") == new
    assert await resolve(service, "phone", "13900000001") == a
    assert {i["type"] for i in (await service.explain("t1", a))["identifiers"]} == {"phone"}
    moved = (await service.explain("t1", new))["identifiers"]
    assert {i["cause"]["rule"] for i in moved} == {"split"}

    again = await ops.on_command(command)
    assert [o.value for o in again.outgoing] == [split]
    assert await resolve(service, "wechat_unionid", "u1") == new
    # New touchpoints follow the split.
    assert one_id_of(await service.identify(event("e5", ("email", "li@163.com")))) == new


async def test_a_split_that_would_empty_the_person_is_rejected(service, ops):
    a = one_id_of(await service.identify(event("e1", phone(1))))
    [link] = (await service.explain("t1", a))["identifiers"]
    handled = await ops.on_command(SplitRequested(command_id="cmd-2", tenant_id="t1", one_id=a,
                                                  link_ids=[link["link_id"]], requested_by="ops", requested_at=T0))
    assert handled.outgoing == []
    assert (await ops.status("t1", "cmd-2"))["status"].startswith("rejected")


async def test_erasure_leaves_no_identifier_hash_or_value_behind(service, ops, db):
    a = one_id_of(await service.identify(event("e1", phone(1), ("email", "wang@qq.com"))))
    b = one_id_of(await service.identify(event("e2", ("wechat_unionid", "u7"))))
    await service.identify(event("e3", phone(1), ("wechat_unionid", "u7")))
    keep = one_id_of(await service.identify(event("e4", phone(2))))
    keys = [i["link_id"] for i in (await service.explain("t1", a))["identifiers"]]
    assert len(keys) == 3

    handled = await ops.on_command(ErasureRequested(command_id="del-1", tenant_id="t1", one_id=b,
                                                    requested_by="admin", requested_at=T0))
    [erased] = [o.value for o in handled.outgoing]
    assert isinstance(erased, PersonErased) and erased.one_id == a and sorted(erased.one_ids) == sorted([a, b])
    for name in ALL_COLLECTIONS:
        async for doc in db[name].find({}):
            text = str(doc)
            assert not any(k in text for k in keys), f"{name} still holds a hash: {doc['_id']}"
            assert "13900000001" not in text and "wang@qq.com" not in text
    assert await resolve(service, "phone", "13900000001") is None
    assert await service.explain("t1", a) is None
    assert await resolve(service, "phone", "13900000002") == keep  # nobody else is touched
    # A redelivered touchpoint of the erased person stays a no-op once emitted.
    first = await service.identify(event("e1", phone(1), ("email", "wang@qq.com")))
    await first.after_emit()
    assert not (await service.identify(event("e1", phone(1), ("email", "wang@qq.com")))).outgoing


async def test_reveal_opens_only_the_persons_own_identifier(service):
    a = one_id_of(await service.identify(event("e1", phone(1))))
    b = one_id_of(await service.identify(event("e2", phone(2))))
    [link_a] = (await service.explain("t1", a))["identifiers"]
    assert await service.reveal("t1", a, link_a["link_id"]) == ("phone", "+8613900000001")
    assert await service.reveal("t1", b, link_a["link_id"]) is None
    assert await service.reveal("t2", a, link_a["link_id"]) is None  # another tenant sees nothing


async def test_a_merge_made_by_an_attempt_that_died_is_still_emitted_by_the_retry(service, db):
    a = one_id_of(await service.identify(event("e1", phone(1))))
    b = one_id_of(await service.identify(event("e2", ("wechat_unionid", "u1"))))
    bridge = event("e3", phone(1), ("wechat_unionid", "u1"))
    await service.identify(bridge)
    # The first attempt merged, then died before its receipt was written.
    await db["identity_receipts"].delete_one({"_id": "t1\x1fe3"})
    retry = await service.identify(bridge)
    assert [(m.winner, m.loser, m.event_id) for m in merges_of(retry)] == [(a, b, "e3")]


async def test_a_split_that_died_halfway_is_finished_by_the_retry(service, ops, db):
    a = one_id_of(await service.identify(event("e1", phone(1))))
    await service.identify(event("e2", ("wechat_unionid", "u1"), ("email", "li@163.com")))
    await service.identify(event("e3", phone(1), ("wechat_unionid", "u1")))
    move = [i["link_id"] for i in (await service.explain("t1", a))["identifiers"] if i["type"] != "phone"]
    command = SplitRequested(command_id="cmd-9", tenant_id="t1", one_id=a, link_ids=move,
                             requested_by="ops", requested_at=T0)
    first = await ops.on_command(command)
    [split] = [o.value for o in first.outgoing]
    # Pretend the first attempt died after moving one link, before anything else was recorded.
    await db["identity_commands"].delete_one({"_id": "t1\x1fcmd-9"})
    await db["identity_links"].update_one({"_id": move[1]}, {"$set": {"one_id": a}})
    await db["identity_persons"].update_one({"_id": a}, {"$set": {f"members.{k}": "x" for k in move}})
    await db["identity_receipts"].update_many({"tenant_id": "t1"}, {"$set": {"one_id": a}})
    retry = await ops.on_command(command)
    [again] = [o.value for o in retry.outgoing]
    assert again.new_one_id == split.new_one_id and again.moved_event_ids == ["e2"]
    assert sorted(again.moved_identifier_types) == ["email", "wechat_unionid"]
    assert await resolve(service, "email", "li@163.com") == split.new_one_id
    assert await resolve(service, "wechat_unionid", "u1") == split.new_one_id


async def test_a_referrers_phone_leaves_identity_as_their_one_id(service):
    referrer = one_id_of(await service.identify(event("e1", phone(1))))
    referral = event("e2", phone(2), referrer_phone="139-0000-0001")
    referral = referral.model_copy(update={"event_type": EventType.REFERRAL_MADE})
    identified = next(o.value for o in (await service.identify(referral)).outgoing)
    assert identified.touchpoint.attributes == {"referrer_one_id": referrer}
    assert "13900000001" not in identified.model_dump_json()
    unknown = event("e3", phone(3), referrer_phone="13900000099").model_copy(update={"event_type": EventType.REFERRAL_MADE})
    assert next(o.value for o in (await service.identify(unknown)).outgoing).touchpoint.attributes == {}
