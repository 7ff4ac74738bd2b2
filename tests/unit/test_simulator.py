"""The simulator: a deterministic, valid, realistic stream with a truthful ground truth (no I/O)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from functools import cache

import httpx
import pytest

from leadflow.simulate.runner import HttpSink, KafkaSink, publish_paced
from leadflow.simulate.scenario import JUNK_REASONS, TEST_NUMBERS, generate
from schemas.touchpoints import EventType, IdentifierType, TouchpointReceived

NOW = datetime(2025, 5, 20, 12, 0, 0, 123456, tzinfo=timezone.utc)
COUNT = 2000
HIGH_INTENT = {EventType.TEST_DRIVE_BOOKED, EventType.STORE_VISITED, EventType.QUOTE_REQUESTED}


@cache
def scenario(seed: int = 7, count: int = COUNT):
    return generate("demo", seed, count, NOW)


def norm_phone(value: str) -> str:
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", value))
    if digits.startswith("0086"):
        return digits[4:]
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def keys(event: TouchpointReceived) -> set[tuple[str, str, str | None]]:
    return {(i.type, norm_phone(i.value) if i.type is IdentifierType.PHONE else i.value, i.namespace)
            for i in event.identifiers}


def by_actor(events) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for e in events:
        out[e.actor_id].append(e)
    return out


# ---- determinism and validity ---------------------------------------------------------------------


def test_same_seed_and_now_give_byte_identical_events_and_truth():
    (a, ta), (b, tb) = generate("demo", 11, 500, NOW), generate("demo", 11, 500, NOW)
    assert [e.event.to_bytes() for e in a] == [e.event.to_bytes() for e in b]
    assert ta.to_json() == tb.to_json()


def test_different_seeds_give_different_streams():
    def content(events):  # ignore event ids: they carry the seed and would differ trivially
        return [(e.event.event_type, e.event.identifiers, e.event.attributes) for e in events]

    assert content(generate("demo", 1, 300, NOW)[0]) != content(generate("demo", 2, 300, NOW)[0])


def test_every_event_is_a_valid_touchpoint_of_the_tenant():
    events, _ = scenario()
    assert len(events) == COUNT
    for e in events:
        assert TouchpointReceived.from_bytes(e.event.to_bytes()) == e.event
        assert e.event.tenant_id == "demo"


def test_event_ids_are_deterministic_and_unique():
    events, _ = scenario()
    ids = [e.event.event_id for e in events]
    assert len(set(ids)) == COUNT
    assert ids[0] == "sim-7-00000000" and ids[-1] == f"sim-7-{COUNT - 1:08d}"


def test_small_and_empty_counts_and_naive_now():
    assert generate("demo", 3, 0, NOW)[0] == []
    assert len(generate("demo", 3, 1, NOW)[0]) == 1
    with pytest.raises(ValueError):
        generate("demo", 3, 10, NOW.replace(tzinfo=None))


# ---- time ----------------------------------------------------------------------------------------


def test_times_are_shanghai_within_30_days_and_not_after_now():
    events, _ = scenario()
    for e in events:
        t = e.event.occurred_at
        assert t.utcoffset() == timedelta(hours=8)
        assert NOW - timedelta(days=30) <= t <= NOW


def test_each_person_in_time_order_and_persons_interleaved():
    events, _ = scenario()
    for actor_events in by_actor(events).values():
        times = [e.event.occurred_at for e in actor_events]
        assert times == sorted(times)
    runs = 1 + sum(a.actor_id != b.actor_id for a, b in zip(events, events[1:]))
    assert runs > 1.5 * len(by_actor(events))  # not one block per person


def test_journeys_follow_the_funnel():
    funnel = [EventType.WECHAT_FOLLOWED, EventType.FORM_SUBMITTED, EventType.TEST_DRIVE_BOOKED,
              EventType.STORE_VISITED, EventType.QUOTE_REQUESTED, EventType.DEPOSIT_PAID,
              EventType.ORDER_PLACED, EventType.PURCHASE_COMPLETED]
    events, truth = scenario()
    actors = by_actor(events)
    for p in truth.persons.values():
        if p.kind != "owner":  # owners may follow the account after their service visit
            types = [e.event.event_type for e in actors[p.person_id]]
            ranks = [funnel.index(t) for t in types if t in funnel]
            assert ranks == sorted(ranks), p.person_id


# ---- identity overlap ----------------------------------------------------------------------------


def test_persons_link_new_identifier_types_across_events():
    events, _ = scenario()
    linked = 0
    for actor, evs in by_actor(events).items():
        if not actor.startswith("p-"):
            continue
        ks = [keys(e.event) for e in evs]
        pairs = [(a, b) for i, a in enumerate(ks) for b in ks[i + 1:]]
        linked += any(a & b and {k[0] for k in a} != {k[0] for k in b} for a, b in pairs)
    assert linked >= 50


def test_wechat_follower_reappears_in_the_mini_program_under_another_openid():
    events, _ = scenario()
    namespaces: dict[str, set[str]] = defaultdict(set)
    for e in events:
        ids = e.event.identifiers
        unionids = [i.value for i in ids if i.type is IdentifierType.WECHAT_UNIONID]
        for i in ids:
            if i.type is IdentifierType.WECHAT_OPENID and unionids and not e.junk:
                namespaces[unionids[0]].add(i.namespace)
    assert sum(len(ns) >= 2 for ns in namespaces.values()) >= 10


def test_douyin_leads_later_call_with_a_differently_spelled_phone():
    events, _ = scenario()
    found = 0
    for evs in by_actor(events).values():
        dy_phones = {norm_phone(i.value) for e in evs if e.event.source.channel == "douyin"
                     for i in e.event.identifiers if i.type is IdentifierType.PHONE}
        calls = [i.value for e in evs if e.event.event_type is EventType.CALL_LOGGED
                 for i in e.event.identifiers if i.type is IdentifierType.PHONE]
        found += any(norm_phone(v) in dy_phones and v not in dy_phones for v in calls)
    assert found >= 5


def test_call_centre_spells_phones_in_many_ways_that_all_normalise():
    events, _ = scenario()
    phones = [i.value for e in events if e.event.event_type is EventType.CALL_LOGGED
              for i in e.event.identifiers if i.type is IdentifierType.PHONE]
    assert any(p.startswith("+86 ") for p in phones) and any(p.startswith("0086-") for p in phones)
    assert any("１" in p or "８" in p for p in phones)  # full-width digits
    assert all(re.fullmatch(r"1\d{10}", norm_phone(p)) for p in phones)


# ---- junk and conversion --------------------------------------------------------------------------


def test_junk_is_about_a_tenth_flagged_with_known_reasons():
    events, _ = scenario()
    junk = [e for e in events if e.junk]
    assert 0.07 <= len(junk) / COUNT <= 0.13
    assert Counter(e.junk_reason for e in junk).keys() == set(JUNK_REASONS)
    for e in events:
        if any(i.value in TEST_NUMBERS for i in e.event.identifiers):
            assert e.junk_reason == "test_number"
        if e.junk_reason == "bot_form":
            assert e.event.attributes["fill_seconds"] < 2
    assert not any(e.junk for e in events if e.actor_id.startswith("p-"))


def test_brushing_is_one_device_many_forms_in_minutes():
    events, _ = scenario()
    for evs in by_actor([e for e in events if e.junk_reason == "brushing"]).values():
        assert len({(e.event.identifiers[0].value, e.event.source.ip) for e in evs}) == 1
        if len(evs) >= 3:
            assert evs[-1].event.occurred_at - evs[0].event.occurred_at < timedelta(hours=4)
            assert len({e.event.identifiers[1].value for e in evs}) == len(evs)


def test_converters_are_a_minority_with_more_high_intent_events():
    events, truth = scenario()
    persons = truth.persons.values()
    converted = [p for p in persons if p.converted]
    assert 0.05 <= len(converted) / len(truth.persons) <= 0.2
    actors = by_actor(events)
    for p in persons:
        types = {e.event.event_type for e in actors[p.person_id]}
        assert p.converted == bool(types & {EventType.ORDER_PLACED, EventType.PURCHASE_COMPLETED})

    def intent(group):  # high-intent events per person
        return sum(e.event.event_type in HIGH_INTENT for p in group for e in actors[p.person_id]) / len(group)

    assert intent(converted) > 3 * intent([p for p in persons if not p.converted])


# ---- ground truth --------------------------------------------------------------------------------


def test_ground_truth_covers_every_event_and_serialises():
    events, truth = scenario()
    data = json.loads(truth.to_json())
    assert list(data["events"]) == [e.event.event_id for e in events]
    for e in events:
        row = data["events"][e.event.event_id]
        assert row == {"person_id": e.actor_id, "junk": e.junk, "junk_reason": e.junk_reason}
        assert e.actor_id in (data["junk_actors"] if e.junk else data["persons"])
    assert data["summary"]["events"] == COUNT
    some = next(iter(data["persons"].values()))
    assert set(some) == {"kind", "converted", "identifiers"} and some["identifiers"]


def test_truth_lists_exactly_the_identifiers_a_person_used():
    events, truth = scenario()
    actors = by_actor(events)
    for p in truth.persons.values():
        used = {(i.type, i.value, i.namespace) for e in actors[p.person_id] for i in e.event.identifiers}
        assert {(i.type, i.value, i.namespace) for i in p.identifiers} == used


# ---- runner, with fakes (no broker, no network) ---------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds


class RecordingSink:
    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.sent, self.drained = clock, [], 0

    def send(self, event):
        self.sent.append((self.clock(), event.event_id))

    def idle(self):
        pass

    def drain(self):
        self.drained += 1

    def close(self):
        pass


def test_publish_paced_sends_each_event_on_time_and_drains_once():
    events, _ = generate("demo", 5, 50, NOW)
    clock = FakeClock()
    sink = RecordingSink(clock)
    elapsed = publish_paced(events, sink, rate=10, clock=clock, sleep=clock.sleep)
    assert [eid for _, eid in sink.sent] == [e.event.event_id for e in events]
    assert [round(t - 100.0, 6) for t, _ in sink.sent] == [round(i / 10, 6) for i in range(50)]
    assert sink.drained == 1 and elapsed == pytest.approx(4.9)


def test_http_sink_posts_the_kafka_bytes_in_batches_with_the_api_key():
    events, _ = generate("demo", 5, 25, NOW)
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/events" and request.headers["X-Api-Key"] == "k1"
        bodies.append(json.loads(request.content))
        return httpx.Response(202, json={"accepted": len(bodies[-1]["events"])})

    transport = httpx.MockTransport(handler)
    client = httpx.Client(base_url="http://gw", headers={"X-Api-Key": "k1"}, transport=transport)
    sink = HttpSink(client, batch_size=10)
    for e in events:
        sink.send(e.event)
    sink.drain()
    assert [len(b["events"]) for b in bodies] == [10, 10, 5]
    posted = [TouchpointReceived.model_validate(x) for b in bodies for x in b["events"]]
    assert posted == [e.event for e in events]


def test_http_sink_raises_when_the_gateway_refuses():
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    client = httpx.Client(base_url="http://gw", transport=transport)
    sink = HttpSink(client, batch_size=100)
    sink.send(generate("demo", 5, 1, NOW)[0][0].event)
    with pytest.raises(httpx.HTTPStatusError):
        sink.drain()


def test_kafka_sink_checks_every_future():
    class Future:
        def __init__(self, error=None):
            self.error = error

        def get(self, timeout):
            if self.error:
                raise self.error

    class FakePublisher:
        timeout_s = 1.0

        def __init__(self):
            self.n, self.flushed = 0, False

        def send_nowait(self, event):
            self.n += 1
            return Future(RuntimeError("not acknowledged") if self.n == 3 else None)

        def flush(self):
            self.flushed = True

    publisher = FakePublisher()
    sink = KafkaSink(publisher)
    for e in generate("demo", 5, 5, NOW)[0]:
        sink.send(e.event)
    with pytest.raises(RuntimeError, match="not acknowledged"):
        sink.drain()
    assert publisher.flushed
