"""identity against the real store: stitching, merges, replays and racing workers."""

from __future__ import annotations

import asyncio

import pytest

from schemas.touchpoints import Identifier
from services.identity.adapters.repository import IdentityRepository
from services.identity.handlers import IdentityService
from tests.integration.identity_kit import Clock, make_service, merges_of, event, one_id_of, SECRET, FERNET_KEY
from services.identity.adapters.vault import Vault


@pytest.fixture
async def service(db):
    return await make_service(db)


async def test_spellings_stitch_and_a_bridge_event_merges_into_the_oldest(service):
    a = one_id_of(await service.identify(event("e1", ("phone", "13800001111"))))
    b = one_id_of(await service.identify(event("e2", ("wechat_unionid", "u-1"))))
    assert a != b
    assert one_id_of(await service.identify(event("e3", ("phone", "+86 138 0000 1111")))) == a

    bridge = await service.identify(event("e4", ("phone", "0086-138-0000-1111"), ("wechat_unionid", "u-1")))
    merges = merges_of(bridge)
    assert [(m.winner, m.loser) for m in merges] == [(a, b)]
    assert one_id_of(bridge) == a
    assert await service.resolve("t1", Identifier(type="wechat_unionid", value="u-1")) == a
    assert await service.live_one_id("t1", b) == a
    shown = await service.identifiers_of("t1", a)
    assert sorted(i["type"] for i in shown) == ["phone", "wechat_unionid"]
    assert all("13800001111" not in str(i) for i in shown)  # masked, never raw


async def test_replays_change_nothing_and_emit_again_until_marked(service, db):
    first = await service.identify(event("e1", ("phone", "13800001111")))
    replay = await service.identify(event("e1", ("phone", "13800001111")))
    assert one_id_of(replay) == one_id_of(first)  # not yet marked emitted: the replay re-emits
    await replay.after_emit()
    assert not (await service.identify(event("e1", ("phone", "13800001111")))).outgoing
    assert await db["identity_links"].count_documents({}) == 1
    assert await db["identity_persons"].count_documents({}) == 1


async def test_tenants_never_share_persons(service):
    a = one_id_of(await service.identify(event("e1", ("phone", "13800001111"), tenant="t1")))
    b = one_id_of(await service.identify(event("e1", ("phone", "13800001111"), tenant="t2")))
    assert a != b
    assert await service.resolve("t2", Identifier(type="phone", value="13800001111")) == b


async def test_racing_workers_never_give_one_identifier_two_persons(db):
    """Two services (as two workers would) stitch overlapping events at the same time."""
    repo = IdentityRepository(db)
    await repo.ensure_indexes()
    workers = [IdentityService(IdentityRepository(db), master_secret=SECRET, vault=Vault(FERNET_KEY), clock=Clock())
               for _ in range(2)]
    events = [event(f"r{i}", ("phone", "13900001111"), ("device_id", f"dev-{i % 3}")) for i in range(12)]
    await asyncio.gather(*(workers[i % 2].identify(e) for i, e in enumerate(events)))
    resolved = {await workers[0].resolve("t1", Identifier(type="phone", value="13900001111"))}
    for i in range(3):
        resolved.add(await workers[0].resolve("t1", Identifier(type="device_id", value=f"dev-{i}")))
    assert len(resolved) == 1
