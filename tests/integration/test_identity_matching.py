"""Probabilistic matching in the stream, against the real store: merges, the review queue, guardrails."""

from __future__ import annotations

import asyncio

import pytest

from schemas.identity import ErasureRequested, ReviewDecided
from services.identity.domain.policy import IdentityPolicy, PolicyBook
from services.identity.matcher import _profile_from_json
from tests.integration.identity_kit import T0, event, make_service, merges_of, one_id_of, operations

# Thresholds moved so that one pair below lands in the grey band: thresholds are per tenant.
WIDE_REVIEW = PolicyBook(IdentityPolicy(), {"wide": IdentityPolicy(review=0.3, auto_merge=0.95)})


@pytest.fixture
async def service(db):
    return await make_service(db, WIDE_REVIEW)


async def test_same_name_birth_date_and_city_merge_without_a_shared_identifier(service):
    a = one_id_of(await service.identify(event("e1", ("phone", "13900000001"), name="张伟", birth_date="1988-03-12", city="上海")))
    handled = await service.identify(event("e2", ("email", "zw@qq.com"), name="Zhang Wei", birth_date="1988-03-12", city="上海市"))
    [merge] = merges_of(handled)
    assert merge.winner == a and merge.cause == "probabilistic" and merge.match_score >= 0.92
    assert one_id_of(handled) == a
    assert merge.cause_identifier_type is None


async def test_a_common_name_in_the_same_city_is_not_enough(service):
    a = one_id_of(await service.identify(event("e1", ("phone", "13900000001"), name="张伟", city="上海")))
    b = one_id_of(await service.identify(event("e2", ("phone", "13900000002"), name="张伟", city="上海")))
    assert a != b
    assert await service.matcher.open_reviews("t1") == []


async def test_the_grey_band_waits_for_review_and_a_decision_is_carried_out_once(service):
    a = one_id_of(await service.identify(event("e1", ("phone", "13900000001"), tenant="wide",
                                               name="刘洋", birth_date="1992-11-02", city="成都")))
    b = one_id_of(await service.identify(event("e2", ("phone", "13900000002"), tenant="wide",
                                               name="刘样", birth_date="1992-11-02", city="重庆")))
    assert a != b
    [review] = await service.matcher.open_reviews("wide")
    assert {review["a"], review["b"]} == {a, b} and 0.3 <= review["score"] < 0.95
    levels = review["levels"]
    assert (levels["birth_date"], levels["city"]) == ("exact", "disagree") and levels["name"] != "exact"

    ops = operations(service)
    command = ReviewDecided(command_id="rv-1", tenant_id="wide", review_id=review["review_id"], approve=True,
                            decided_by="ops", decided_at=T0)
    handled = await ops.on_command(command)
    [merge] = [o.value for o in handled.outgoing]
    assert merge.cause == "review_approved" and merge.winner == a and merge.loser == b
    assert await service.live_one_id("wide", b) == a
    assert await service.matcher.open_reviews("wide") == []
    assert [o.value for o in (await ops.on_command(command)).outgoing] == [merge]  # replayed: same merge


async def test_a_rejected_pair_is_never_proposed_again(service):
    await service.identify(event("e1", ("phone", "13900000001"), tenant="wide", name="刘洋", birth_date="1992-11-02", city="成都"))
    await service.identify(event("e2", ("phone", "13900000002"), tenant="wide", name="刘样", birth_date="1992-11-02", city="重庆"))
    [review] = await service.matcher.open_reviews("wide")
    ops = operations(service)
    handled = await ops.on_command(ReviewDecided(command_id="rv-2", tenant_id="wide", review_id=review["review_id"],
                                                 approve=False, decided_by="ops", decided_at=T0))
    assert handled.outgoing == []
    # New information about the second person makes matching run again, but the pair stays rejected.
    await service.identify(event("e3", ("phone", "13900000002"), tenant="wide", address="高新区天府大道100号"))
    assert await service.matcher.open_reviews("wide") == []


async def test_a_confident_match_that_breaks_a_guardrail_goes_to_review(service):
    a = one_id_of(await service.identify(event("e1", ("crm_id", "CRM-1"), name="王芳", birth_date="1990-05-05", city="北京")))
    b = one_id_of(await service.identify(event("e2", ("crm_id", "CRM-2"), name="王芳", birth_date="1990-05-05", city="北京")))
    assert a != b
    [review] = await service.matcher.open_reviews("t1")
    assert review["reason"] == "limit:crm_id" and review["score"] >= 0.92


async def test_erasure_forgets_profiles_blocks_and_reviews(service, db):
    await service.identify(event("e1", ("phone", "13900000001"), tenant="wide", name="刘洋", birth_date="1992-11-02", city="成都"))
    b = one_id_of(await service.identify(event("e2", ("phone", "13900000002"), tenant="wide", name="刘样",
                                               birth_date="1992-11-02", city="重庆")))
    assert await db["identity_profiles"].count_documents({"one_id": b}) == 1
    ops = operations(service)
    await ops.on_command(ErasureRequested(command_id="del-1", tenant_id="wide", one_id=b, requested_by="admin",
                                          requested_at=T0))
    assert await db["identity_profiles"].count_documents({"one_id": b}) == 0
    assert await db["identity_reviews"].count_documents({}) == 0
    async for block in db["identity_blocks"].find({}):
        assert b not in block["members"]


async def test_two_workers_matching_one_person_at_once_keep_everything_they_learned(db):
    """Identity's input is keyed by event, so two workers can identify touchpoints of one person at the
    same moment: both add to the person's profile, and both may be the first to write it."""
    workers = [await make_service(db) for _ in range(2)]
    for round_, name in enumerate(["张伟", "李娜", "王强", "刘洋"]):  # four persons nobody would merge
        facts = [{"city": "上海"}, {"birth_date": f"198{round_}-03-12"}, {"address": f"漕溪北路{round_}8号1203室"},
                 {"city": "上海", "email": True}]
        events = [event(f"p{round_}-{i}", ("phone", f"1390000{round_:04d}"),
                        *([("email", f"zw{round_}@qq.com")] if fact.pop("email", False) else []),
                        name=name, **fact) for i, fact in enumerate(facts)]
        handled = await asyncio.gather(*(workers[i % 2].identify(e) for i, e in enumerate(events)))
        [one_id] = {one_id_of(h) for h in handled}
        [doc] = [d async for d in db["identity_profiles"].find({"one_id": one_id})]
        profile = _profile_from_json(workers[0].vault.open(doc["enc"]))
        assert (profile.city, str(profile.birth_date), profile.email_local) == ("上海", f"198{round_}-03-12", f"zw{round_}")
        assert profile.address is not None


async def test_persons_joining_one_block_at_once_are_all_its_members(db):
    """Namesakes share blocks; FerretDB v1 applies `$addToSet` as a read and a write, so two workers
    adding two persons to one block at once would keep only one of them."""
    workers = [await make_service(db) for _ in range(2)]
    cities = ["北京", "广州", "深圳", "杭州", "南京", "武汉", "西安", "重庆", "天津", "苏州", "长沙", "郑州"]
    events = [event(f"n{i}", ("phone", f"1391111{i:04d}"), name="王芳", city=city) for i, city in enumerate(cities)]
    handled = await asyncio.gather(*(workers[i % 2].identify(e) for i, e in enumerate(events)))
    persons = {one_id_of(h) for h in handled}
    assert len(persons) == len(cities)  # a common name in different cities: nobody merged
    members: dict[str, set[str]] = {}
    async for block in db["identity_blocks"].find({}):
        members[block["_id"]] = set(block["members"])
    async for profile in db["identity_profiles"].find({}):
        for block in profile["blocks"]:
            assert profile["one_id"] in members[f"t1\x1f{block}"]
