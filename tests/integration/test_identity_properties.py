"""Stitching in any order, and by racing workers, against the real store.

Without guardrails in play, stitching any permutation of a set of touchpoints yields the same
partition of identifiers into persons as a batch union-find over the same touchpoints. With
guardrails in play, which touchpoint gets held back can depend on arrival order (as in every
streaming identity resolver); what never depends on it: every identifier resolves to one living
person, no person breaks a guardrail, and stitching never joins what union-find keeps apart.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.touchpoints import Identifier
from services.identity.domain.policy import IdentityPolicy, PolicyBook
from services.identity.domain.stitching import prepare
from services.identity.handlers import IdentityService
from tests.integration.identity_kit import event, make_service

# A permissive policy: limits no touchpoint here can reach, nothing weak, nothing exclusive.
OPEN = IdentityPolicy(limits={}, weak=frozenset(), exclusive=frozenset())

STRONG = [("phone", f"1390000{n:04d}") for n in range(6)] + [("wechat_unionid", f"u{n}") for n in range(4)] + [
    ("email", f"p{n}@qq.com") for n in range(3)]
GUARDED = STRONG + [("crm_id", f"CRM-{n}") for n in range(3)] + [("device_id", f"dev-{n}") for n in range(3)]

PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def touchpoints(universe):
    one = st.lists(st.sampled_from(universe), min_size=1, max_size=3, unique=True)
    return st.lists(one, min_size=1, max_size=10)


def union_find(events: list[list[tuple[str, str]]], tenant: str) -> set[frozenset[str]]:
    """The batch reference: identifiers normalised and blocked exactly as on ingest, then union-find."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, ids in enumerate(events):
        keys = [n.identity_key for n in prepare(event(f"uf{i}", *ids, tenant=tenant)).valid]
        for key in keys:
            find(key)
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
    groups: dict[str, set[str]] = defaultdict(set)
    for key in parent:
        groups[find(key)].add(key)
    return {frozenset(g) for g in groups.values()}


async def stitched_partition(service: IdentityService, tenant: str, universe) -> dict[str, str]:
    """identity key -> the living one_id it resolves to, for every identifier the store knows."""
    resolved = {}
    for kind, value in universe:
        identifier = Identifier(type=kind, value=value)
        one_id = await service.resolve(tenant, identifier)
        if one_id is not None:
            ident = prepare(event("probe", (kind, value), tenant=tenant)).valid[0]
            resolved[ident.identity_key] = one_id
    return resolved


def as_partition(resolved: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for key, one_id in resolved.items():
        groups[one_id].add(key)
    return {frozenset(g) for g in groups.values()}


async def run_stream(services: list[IdentityService], events, order: list[int], tenant: str) -> None:
    """Feed the touchpoints in `order`, dealt round-robin to the workers, which run concurrently."""
    lanes = [[i for n, i in enumerate(order) if n % len(services) == w] for w in range(len(services))]

    async def lane(worker: IdentityService, indexes: list[int]) -> None:
        for i in indexes:
            handled = await worker.identify(event(f"e{i}", *events[i], tenant=tenant, minute=i))
            if handled.after_emit:
                await handled.after_emit()

    await asyncio.gather(*(lane(services[w], lanes[w]) for w in range(len(services))))


@PROPERTY
@given(events=touchpoints(STRONG), data=st.data())
async def test_any_order_yields_the_union_find_partition(db, events, data):
    service = await make_service(db, PolicyBook(OPEN))
    tenant = f"p{uuid.uuid4().hex[:8]}"
    order = data.draw(st.permutations(range(len(events))))
    await run_stream([service], events, order, tenant)
    assert as_partition(await stitched_partition(service, tenant, STRONG)) == union_find(events, tenant)


@PROPERTY
@given(events=touchpoints(STRONG), data=st.data())
async def test_two_racing_workers_yield_the_union_find_partition(db, events, data):
    book = PolicyBook(OPEN)
    workers = [await make_service(db, book), await make_service(db, book)]
    tenant = f"r{uuid.uuid4().hex[:8]}"
    order = data.draw(st.permutations(range(len(events))))
    await run_stream(workers, events, order, tenant)
    assert as_partition(await stitched_partition(workers[0], tenant, STRONG)) == union_find(events, tenant)


@PROPERTY
@given(events=touchpoints(GUARDED), data=st.data())
async def test_with_guardrails_every_order_keeps_the_invariants(db, events, data):
    policy = IdentityPolicy()
    book = PolicyBook(policy)
    workers = [await make_service(db, book), await make_service(db, book)]
    tenant = f"g{uuid.uuid4().hex[:8]}"
    order = data.draw(st.permutations(range(len(events))))
    await run_stream(workers, events, order, tenant)

    resolved = await stitched_partition(workers[0], tenant, GUARDED)
    # Never joins what union-find keeps apart: every person lies inside one union-find group.
    reference = union_find(events, tenant)
    for group in as_partition(resolved):
        assert any(group <= ref for ref in reference)
    # No living person breaks a limit or holds two exclusive identifiers.
    per_person: dict[str, Counter] = defaultdict(Counter)
    for key, one_id in resolved.items():
        per_person[one_id][key.split("|", 1)[0]] += 1
    for counts in per_person.values():
        for kind, n in counts.items():
            assert n <= policy.limits[kind], (kind, n)
    # Every identifier resolves to a living person whose record lists it.
    for key, one_id in resolved.items():
        assert await workers[0].live_one_id(tenant, one_id) == one_id
