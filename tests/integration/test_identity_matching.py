"""Probabilistic matching in the stream, against the real store: merges, the review queue, guardrails."""

from __future__ import annotations

import pytest

from schemas.identity import ErasureRequested, ReviewDecided
from services.identity.domain.policy import IdentityPolicy, PolicyBook
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
