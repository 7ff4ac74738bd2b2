"""The simulator's stream through the whole stack, scored against its ground truth.

Deterministic stitching can link two identifiers only when some event carries both. So the
expectation, per true person, is: identifiers connected through that person's events share one
one_id; and no two true persons ever share a one_id (no false merge)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from leadflow.sdk import Publisher
from leadflow.simulate.scenario import generate
from services.identity.domain.normalize import InvalidIdentifier, normalize
from tests.e2e.helpers import eventually


def components(events) -> list[list]:
    """Identifiers that co-occur in the events, grouped transitively (union-find)."""
    parent: dict[str, str] = {}
    sample: dict[str, object] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for event in events:
        keys = []
        for identifier in event.identifiers:
            try:
                key = normalize(identifier).identity_key
            except InvalidIdentifier:
                continue
            sample.setdefault(key, identifier)
            keys.append(key)
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
        if keys:
            find(keys[0])
    groups: dict[str, list] = {}
    for key in parent:
        groups.setdefault(find(key), []).append(sample[key])
    return list(groups.values())


def test_stitching_matches_the_ground_truth(stack):
    seed = random.randrange(10**6)
    sims, truth = generate(stack.tenant, seed, 400, datetime.now(UTC))
    with Publisher(stack.kafka_bootstrap, topic_prefix=stack.topic_prefix) as pub:
        pub.publish_many(s.event for s in sims)

    ops = stack.client("ops")

    def resolve(identifier) -> str | None:
        params = {"type": identifier.type.value, "value": identifier.value}
        if identifier.namespace:
            params["namespace"] = identifier.namespace
        r = ops.get("/v1/identity/resolve", params=params)
        return r.json()["one_id"] if r.status_code == 200 else None

    events_of: dict[str, list] = {}
    for sim in sims:
        if not sim.junk:
            events_of.setdefault(sim.actor_id, []).append(sim.event)
    # Wait until the stream's tail is in, then until every identifier is. The tail is the last real
    # person's event: a junk actor's test number is refused at normalisation and never resolves (a run
    # whose stream happened to end on junk waited for it in vain).
    last = next(s.event for s in reversed(sims) if not s.junk)
    try:
        eventually(lambda: all(resolve(i) for i in last.identifiers), timeout_s=90)
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}") from None

    owner_of: dict[str, str] = {}
    checked = 0
    for pid, events in events_of.items():
        person_ids = set()
        for group in components(events):
            found = eventually(lambda: (ids := {resolve(i) for i in group}) and None not in ids and ids, timeout_s=60)
            assert len(found) == 1, f"{pid}: identifiers that co-occur got several one_ids {found}"
            person_ids |= found
            checked += 1
        for one_id in person_ids:
            assert owner_of.setdefault(one_id, pid) == pid, f"{pid} and {owner_of[one_id]} glued into one person"
    assert checked > 20
