"""Merges, splits and erasures in leads, scoring and notify, against the real store (and broker).

Each service's handlers are driven as their agents drive them, in the orders Kafka allows: a merge
travels on identity.merges while the persons' touchpoints, lead changes and score changes travel on
their own topics, so each service may see the merge before or after any of them.
"""

from __future__ import annotations

from types import SimpleNamespace

import asyncio
import json
from datetime import UTC, datetime, timedelta

import faust
import pytest
from aiokafka import AIOKafkaProducer

from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.consumer import RecordProcessor
from leadflow.runtime.worker import Channels
from schemas.dead_letters import DeadLetterHeaders
from schemas.identity import (
    IdentityChanged,
    LinkedIdentifier,
    PersonErased,
    PersonsMerged,
    PersonSplit,
    TouchpointIdentified,
)
from schemas.leads import LeadUpdated
from schemas.scores import ScoreChanged
from schemas.tasks import TaskCreated, TaskStatus
from schemas.topics import IDENTITY_MERGES, LEADS_CHANGES, dead_letter_topic
from schemas.touchpoints import TouchpointReceived
from tests.integration.kafka_kit import read_all
from services.leads.bootstrap import make_service
from services.leads.entrypoints import agents as leads_agents
from services.notify.adapters.repository import NotifyRepository
from services.notify.entrypoints import agents as notify_agents
from services.notify.handlers import NotifyService
from services.scoring.bootstrap import make_service as make_scoring
from services.scoring.entrypoints import agents as scoring_agents

T0 = datetime(2026, 11, 22, 8, tzinfo=UTC)
NOW = T0 + timedelta(hours=4)
SERVICE_COLLECTIONS = ("leads", "lead_transitions", "lead_touchpoints", "lead_erasures", "scores", "score_erasures",
                       "tasks", "task_slots", "task_outcomes", "task_erasures", "consultants")


def touchpoint(event_id: str, one_id: str, event_type: str = "form_submitted", *, minute: int = 0,
               phone: str | None = "+86 139****0001", store: str = "s1", tenant: str = "t1", **attributes) -> TouchpointIdentified:
    tp = TouchpointReceived.model_validate({
        "event_id": event_id, "event_type": event_type, "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
        "tenant_id": tenant, "source": {"system": "it", "channel": "web", "store_id": store, "user_agent": "Mozilla/5.0"},
        "identifiers": [{"type": "phone", "value": phone}] if phone else [{"type": "device_id", "value": "d-1"}],
        "attributes": {"fill_seconds": 30, **attributes} if event_type == "form_submitted" else attributes,
    })
    linked = [LinkedIdentifier(type="phone", link_id=f"ph{phone[-4:]}", masked=phone, facts=["mobile"])] if phone else []
    return TouchpointIdentified(tenant_id=tenant, event_id=event_id, one_id=one_id, touchpoint=tp, identifiers=linked,
                                identified_at=T0 + timedelta(minutes=minute, seconds=1))


def merged(loser: str, winner: str, *, tenant: str = "t1", n: int = 1) -> PersonsMerged:
    return PersonsMerged(merge_id=f"m-{loser}-{winner}", tenant_id=tenant, winner=winner, loser=loser,
                         cause_identifier_type="phone", event_id=f"merge-cause-{n}", merged_at=T0 + timedelta(hours=1))


class Chain:
    """leads -> scoring -> notify as the agents chain them; records everything emitted."""

    def __init__(self, db) -> None:
        self.db = db
        self.leads = make_service(db)
        self.scoring = make_scoring(db, clock=lambda: NOW)
        self.notify = NotifyService(NotifyRepository(db), clock=self._tick)
        self._now = NOW
        self.lead_changes: list[LeadUpdated] = []
        self.score_changes: list[ScoreChanged] = []
        self.tasks_created: list[TaskCreated] = []

    def _tick(self) -> datetime:
        self._now += timedelta(seconds=1)  # notify's tasks get distinct creation times
        return self._now

    async def setup(self, *consultants: tuple[str, str]) -> Chain:
        for repo in (self.leads, self.scoring, self.notify.repo):
            await repo.ensure_indexes()
        for consultant_id, store in consultants:
            await self.notify.upsert_consultant(tenant_id="t1", consultant_id=consultant_id,
                                                fields={"name": consultant_id, "store_id": store, "capacity": 10, "active": True})
        return self

    async def touch(self, event: TouchpointIdentified, *, downstream: bool = True) -> list[LeadUpdated]:
        changes = [o.value for o in (await self.leads.on_identified(event)).outgoing]
        self.lead_changes += changes
        if downstream:
            await self.score(changes)
        return changes

    async def score(self, changes: list[LeadUpdated]) -> None:
        for change in changes:
            scored = [o.value for o in (await self.scoring.on_lead_updated(change)).outgoing]
            self.score_changes += scored
            await self.task(scored)

    async def task(self, scored: list[ScoreChanged]) -> None:
        for change in scored:
            self.tasks_created += [o.value for o in (await self.notify.on_score_changed(change)).outgoing]

    async def identity(self, change, *, order: tuple[str, ...] = ("leads", "scoring", "notify")) -> None:
        """One identity change, handled by each service in `order`, with what each emits passed on."""
        for service in order:
            if service == "leads":
                changes = [o.value for o in (await self.leads.on_identity_changed(change)).outgoing]
                self.lead_changes += changes
                await self.score(changes)
            elif service == "scoring":
                scored = [o.value for o in (await self.scoring.on_identity_changed(change)).outgoing]
                self.score_changes += scored
                await self.task(scored)
            else:
                assert not (await self.notify.on_identity_changed(change)).outgoing

    async def open_tasks(self, one_id: str) -> list[dict]:
        return await self.notify.tasks(tenant_id="t1", consultant_id=None, status=TaskStatus.OPEN, one_id=one_id)

    async def load(self, consultant_id: str) -> int:
        return (await self.db["consultants"].find_one({"_id": f"t1\x1f{consultant_id}"})).get("open_tasks", 0)

    async def everything(self) -> dict[str, list[dict]]:
        return {name: [d async for d in self.db[name].find({}).sort("_id", 1)] for name in SERVICE_COLLECTIONS}


@pytest.fixture
async def chain(db):
    return await Chain(db).setup(("c1", "s1"), ("c2", "s2"))


async def two_persons_with_tasks(chain: Chain, *, loser_store: str = "s1") -> None:
    """w: followed, then filled a form (task at c1). l: filled a form later (a task of its own)."""
    await chain.touch(touchpoint("w1", "w", "wechat_followed", minute=0, phone=None))
    await chain.touch(touchpoint("w2", "w", minute=10, phone="+86 139****0001", name="张伟"))
    await chain.touch(touchpoint("l1", "l", minute=20, phone="+86 139****0002", store=loser_store, city="上海"))
    assert len(await chain.open_tasks("w")) == 1 and len(await chain.open_tasks("l")) == 1


# ---- merges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [("leads", "scoring", "notify"), ("notify", "scoring", "leads"), ("scoring", "notify", "leads")])
async def test_a_merge_folds_two_persons_into_one_lead_score_and_task(chain, order):
    await two_persons_with_tasks(chain)
    w_task = (await chain.open_tasks("w"))[0]
    await chain.identity(merged("l", "w"), order=order)

    lead = await chain.leads.get("t1", "w")
    assert lead.touchpoints == 3 and lead.absorbed == ("l",) and lead.reachable
    assert (lead.name, lead.city) == ("张伟", "上海")
    assert (await chain.leads.get("t1", "l")).one_id == "w"  # a merged one_id reads as its survivor
    assert [x.one_id for x in await chain.leads.list("t1")] == ["w"]
    assert sum((await chain.leads.funnel("t1")).values()) == 1

    score = await chain.scoring.get("t1", "w")
    assert {s["event_id"] for s in score["signals"]} == {"w1", "w2", "l1"}
    assert set(await chain.scoring.many("t1", ["w", "l"])) == {"w"}
    assert chain.score_changes[-1].one_id == "w"

    # One open task per consultant: l's younger task at c1 was closed in favour of w's.
    assert [t["_id"] for t in await chain.open_tasks("w")] == [w_task["_id"]]
    assert await chain.open_tasks("l") == []
    closed = await chain.db["tasks"].find_one({"one_id": "w", "status": "done"})
    assert (closed["closed_reason"], closed["duplicate_of"]) == ("duplicate_after_merge", w_task["_id"])
    assert await chain.load("c1") == 1


async def test_after_a_merge_the_tasks_of_different_consultants_both_stay_open(chain):
    await two_persons_with_tasks(chain, loser_store="s2")
    await chain.identity(merged("l", "w"))
    open_tasks = await chain.open_tasks("w")
    assert sorted(t["consultant_id"] for t in open_tasks) == ["c1", "c2"]
    assert (await chain.load("c1"), await chain.load("c2")) == (1, 1)
    slot = await chain.db["task_slots"].find_one({"_id": "t1\x1fw"})
    assert {slot["open_task_id"], *slot["also_open"]} == {t["_id"] for t in open_tasks}
    # A new score change of the person creates no third task.
    await chain.touch(touchpoint("w3", "w", "test_drive_booked", minute=30))
    assert len(await chain.open_tasks("w")) == 2


async def test_a_late_touchpoint_of_the_loser_lands_on_the_winner(chain):
    await two_persons_with_tasks(chain)
    await chain.identity(merged("l", "w"))
    changes = await chain.touch(touchpoint("l2", "l", "test_drive_booked", minute=40))
    assert [(c.one_id, c.lead.touchpoints, c.lead.stage) for c in changes] == [("w", 4, "opportunity")]
    assert chain.score_changes[-1].one_id == "w"
    assert "l2" in {s["event_id"] for s in (await chain.scoring.get("t1", "w"))["signals"]}
    assert len(await chain.open_tasks("w")) == 1
    assert (await chain.db["lead_touchpoints"].find_one({"_id": "t1\x1fl2"}))["one_id"] == "w"
    # A replay of a touchpoint the loser had applied is recognised as one.
    await chain.touch(touchpoint("l1", "l", minute=20, phone="+86 139****0002"))
    assert (await chain.leads.get("t1", "w")).touchpoints == 4


async def test_merge_chains_resolve(chain):
    await chain.touch(touchpoint("a1", "a", minute=0))
    await chain.touch(touchpoint("b1", "b", minute=1, phone=None))
    await chain.touch(touchpoint("c1", "c", minute=2, phone=None))
    await chain.identity(merged("a", "b"))
    await chain.identity(merged("b", "c", n=2))
    changes = await chain.touch(touchpoint("a2", "a", "store_visited", minute=3))
    assert [c.one_id for c in changes] == ["c"] and changes[0].lead.touchpoints == 4
    assert (await chain.leads.get("t1", "c")).absorbed == ("b", "a")
    assert {s["event_id"] for s in (await chain.scoring.get("t1", "c"))["signals"]} == {"a1", "b1", "c1", "a2"}
    assert [t["one_id"] for t in await chain.open_tasks("c")] == ["c"]
    assert await chain.open_tasks("a") == await chain.open_tasks("b") == []
    assert await chain.load("c1") == 1
    # A merge whose winner was merged since folds into the survivor.
    await chain.touch(touchpoint("d1", "d", minute=4, phone=None))
    await chain.identity(merged("d", "b", n=3))
    assert (await chain.leads.get("t1", "c")).touchpoints == 5


async def test_a_replayed_merge_changes_nothing(chain):
    await two_persons_with_tasks(chain)
    merge = merged("l", "w")
    await chain.identity(merge)
    before = await chain.everything()
    sent = (len(chain.lead_changes), [c.change_id for c in chain.score_changes], len(chain.tasks_created))
    leads_again = [o.value for o in (await chain.leads.on_identity_changed(merge)).outgoing]
    scoring_again = [o.value for o in (await chain.scoring.on_identity_changed(merge)).outgoing]
    await chain.notify.on_identity_changed(merge)
    assert await chain.everything() == before  # not one write (write ids would differ)
    # What is sent again carries the ids of the first time, so consumers recognise it.
    assert {c.change_id for c in leads_again} <= {c.change_id for c in chain.lead_changes}
    assert {c.change_id for c in scoring_again} <= set(sent[1])
    await chain.score(leads_again)
    await chain.task(scoring_again)
    assert await chain.everything() == before and len(chain.tasks_created) == sent[2]


async def test_a_merge_before_the_losers_last_touchpoint_converges(db, chain):
    """Reference: the same touchpoints, all of one person. Then: the merge overtakes the loser's last
    touchpoint in leads, and the loser's last lead change in scoring; both end where the reference is."""
    events = [("w1", "page_viewed", 0, None), ("l1", "form_submitted", 5, "+86 139****0002"),
              ("w2", "price_inquired", 10, None), ("l2", "test_drive_booked", 15, "+86 139****0002")]
    reference = await Chain(db).setup()
    for event_id, kind, minute, phone in events:
        await reference.touch(touchpoint(event_id, "w", kind, minute=minute, phone=phone, tenant="ref"))
    ref_lead = await reference.leads.get("ref", "w")

    await chain.touch(touchpoint("w1", "w", "page_viewed", minute=0, phone=None))
    await chain.touch(touchpoint("l1", "l", "form_submitted", minute=5, phone="+86 139****0002"))
    await chain.touch(touchpoint("w2", "w", "price_inquired", minute=10, phone=None))
    in_flight = await chain.touch(touchpoint("l2", "l", "test_drive_booked", minute=15), downstream=False)
    await chain.identity(merged("l", "w"))  # scoring sees the merge before l2's lead change
    await chain.score(in_flight)
    late = await chain.touch(touchpoint("l3", "l", "page_viewed", minute=16, phone=None))  # leads, after the merge
    assert [c.one_id for c in late] == ["w"]

    lead = await chain.leads.get("t1", "w")
    assert (lead.touchpoints, lead.stage, lead.verdict, lead.reachable) == (
        ref_lead.touchpoints + 1, ref_lead.stage, ref_lead.verdict, ref_lead.reachable)
    score = await chain.scoring.get("t1", "w")
    assert {s["event_id"] for s in score["signals"]} == {"w1", "l1", "w2", "l2", "l3"}
    assert score["grade"] == (await reference.scoring.get("ref", "w"))["grade"]
    assert await chain.db["scores"].find_one({"_id": "t1\x1fl"}) == await chain.db["scores"].find_one(
        {"_id": "t1\x1fl", "merged_into": "w"})
    assert len(await chain.open_tasks("w")) == 1 and await chain.open_tasks("l") == []


async def test_a_merge_racing_touchpoints_of_both_persons_converges(chain):
    """Touchpoints of both persons and the merge, all at once, as a worker's two agents interleave at
    every await: each service takes one change at a time, so nothing written over is lost."""
    await chain.touch(touchpoint("w0", "w", minute=0))
    await chain.touch(touchpoint("l0", "l", minute=0, phone="+86 139****0002"))
    work = [chain.touch(touchpoint(f"w{n}", "w", "page_viewed", minute=n, phone=None)) for n in range(1, 6)]
    work += [chain.touch(touchpoint(f"l{n}", "l", "page_viewed", minute=n, phone=None)) for n in range(1, 6)]
    work += [chain.identity(merged("l", "w"), order=(service,)) for service in ("leads", "scoring", "notify")]
    await asyncio.gather(*work)
    lead = await chain.leads.get("t1", "w")
    assert lead.touchpoints == 12 and set(lead.recent_event_ids) >= {f"{p}{n}" for p in "wl" for n in range(6)}
    assert (await chain.leads.repo.load("t1", "l")).merged_into == "w"
    entries = [d async for d in chain.db["lead_touchpoints"].find({})]
    assert len(entries) == 12 and {d["one_id"] for d in entries} <= {"w", "l"}
    signals = {s["event_id"] for s in (await chain.scoring.get("t1", "w"))["signals"]}
    assert signals == {f"{p}{n}" for p in "wl" for n in range(6)}
    assert len(await chain.open_tasks("w")) == 1 and await chain.load("c1") == 1


# ---- splits ---------------------------------------------------------------------------------------


async def test_a_split_rebuilds_both_persons(chain):
    # One person as far as everyone knows: s followed, filled a form (task), and "n" booked a test drive.
    await chain.touch(touchpoint("s1", "s", "wechat_followed", minute=0, phone=None))
    await chain.touch(touchpoint("s2", "s", minute=5, name="张伟"))
    await chain.touch(touchpoint("n1", "s", minute=10, phone="+86 139****0009", name="李娜", store="s2"))
    await chain.touch(touchpoint("n2", "s", "test_drive_booked", minute=15, phone="+86 139****0009", store="s2"))
    assert (await chain.leads.get("t1", "s")).stage == "opportunity"
    s_task = (await chain.open_tasks("s"))[0]
    split = PersonSplit(split_id="sp1", tenant_id="t1", source="s", new_one_id="n", moved_identifier_types=["phone"],
                        moved_event_ids=["n1", "n2", "n3"], requested_by="ops", event_id="cmd-1", split_at=NOW)
    await chain.identity(split)

    source, new = await chain.leads.get("t1", "s"), await chain.leads.get("t1", "n")
    assert (source.touchpoints, source.stage, source.name) == (2, "lead", "张伟")
    assert (new.touchpoints, new.stage, new.name, new.store_id) == (2, "opportunity", "李娜", "s2")
    assert [(t["from"], t["to"]) for t in await chain.leads.history("t1", "s")] == [(None, "follower"), ("follower", "lead")]
    assert [(t["from"], t["to"]) for t in await chain.leads.history("t1", "n")] == [(None, "lead"), ("lead", "opportunity")]
    assert {c.one_id for c in chain.lead_changes[-2:]} == {"s", "n"}

    assert {s["event_id"] for s in (await chain.scoring.get("t1", "s"))["signals"]} == {"s1", "s2"}
    new_score = await chain.scoring.get("t1", "n")
    assert {s["event_id"] for s in new_score["signals"]} == {"n1", "n2"} and new_score["grade"] in ("A", "H")
    # The source keeps its task; the new person got one because its own score warrants it.
    assert [t["_id"] for t in await chain.open_tasks("s")] == [s_task["_id"]]
    assert [t["consultant_id"] for t in await chain.open_tasks("n")] == ["c2"]

    # A moved touchpoint still in flight under the source lands on the new person.
    late = await chain.touch(touchpoint("n3", "s", "store_visited", minute=20, store="s2"))
    assert [(c.one_id, c.lead.touchpoints) for c in late] == [("n", 3)]
    assert (await chain.leads.get("t1", "s")).touchpoints == 2

    before = await chain.everything()
    await chain.leads.on_identity_changed(split)
    await chain.scoring.on_identity_changed(split)
    await chain.notify.on_identity_changed(split)
    assert await chain.everything() == before  # a replayed split changes nothing


async def test_a_lead_change_of_a_moved_touchpoint_that_overtook_the_split_goes_to_the_new_person(chain):
    await chain.touch(touchpoint("s1", "s", minute=0))
    in_flight = await chain.touch(touchpoint("n1", "s", "price_inquired", minute=5), downstream=False)
    split = PersonSplit(split_id="sp2", tenant_id="t1", source="s", new_one_id="n", moved_identifier_types=["phone"],
                        moved_event_ids=["n1"], requested_by="ops", event_id="cmd-2", split_at=NOW)
    await chain.identity(split)
    await chain.score(in_flight)  # scoring gets the lead change of n1 (keyed by s) after the split
    assert {s["event_id"] for s in (await chain.scoring.get("t1", "s"))["signals"]} == {"s1"}
    assert {s["event_id"] for s in (await chain.scoring.get("t1", "n"))["signals"]} == {"n1"}


# ---- erasure --------------------------------------------------------------------------------------


async def test_erasure_leaves_nothing_that_mentions_the_persons(chain):
    await two_persons_with_tasks(chain)
    await chain.touch(touchpoint("x1", "x", minute=30, phone="+86 139****0003"))  # somebody else
    await chain.identity(merged("l", "w"))
    assert await chain.load("c1") == 2
    in_flight = await chain.touch(touchpoint("w9", "w", "price_inquired", minute=50), downstream=False)
    erased = PersonErased(erasure_id="er1", tenant_id="t1", one_id="w", one_ids=["w", "l"], requested_by="admin",
                          event_id="cmd-9", erased_at=NOW)
    await chain.identity(erased, order=("notify", "leads", "scoring"))

    def mentions() -> list[str]:
        return [f"{name}: {doc['_id']!r}" for name, docs in snapshot.items() for doc in docs
                if any(one_id in json.dumps(doc, default=str) for one_id in ('"w"', '"l"', "\x1fw", "\x1fl", "\\u001fw", "\\u001fl"))]

    snapshot = await chain.everything()
    assert mentions() == []
    assert await chain.load("c1") == 1  # x's task is the only open one left
    assert [t["one_id"] for t in await chain.notify.tasks(tenant_id="t1", consultant_id=None, status=None)] == ["x"]

    # Nothing in flight brings them back: a touchpoint, a lead change, a score change, a replayed merge.
    await chain.score(in_flight)
    assert await chain.touch(touchpoint("l7", "l", minute=60)) == []
    await chain.task([chain.score_changes[0]])
    await chain.identity(merged("l", "w"))
    await chain.identity(erased)  # and a replayed erasure is harmless
    snapshot = await chain.everything()
    assert mentions() == []
    assert await chain.leads.get("t1", "w") is None and await chain.scoring.get("t1", "w") is None


# ---- the agents, on the real broker ---------------------------------------------------------------


def test_each_service_consumes_identity_changes():
    class Stub:
        async def handle(self, _):
            raise AssertionError("not called")

        on_identified = on_identity_changed = on_lead_updated = on_score_changed = on_outcome = on_task = on_timer = handle
        deliver = handle
        timer_interval_s = delivery_interval_s = 60.0
        pusher = SimpleNamespace()  # notify's register hands its push deliveries a share of the partitions
        guard = SimpleNamespace()  # register tells it whether this worker is alone

    for service, module in (("leads", leads_agents), ("scoring", scoring_agents), ("notify", notify_agents)):
        app = faust.App(f"it-{service}", broker="kafka://127.0.0.1:1")
        module.register(Channels(app, service, "p."), Stub())
        agent = app.agents[f"{service}.identity_changes"]
        assert [t for t in agent.channel.topics] == ["p.identity.merges"]


async def test_identity_changes_are_consumed_under_the_consumer_policy(infra, db, unique):
    """Through the runtime's record processor on the real broker: a merge emits the folded lead on
    leads.changes; an undecodable record goes to identity.merges.leads.dlq."""
    chain = await Chain(db).setup(("c1", "s1"))
    await two_persons_with_tasks(chain)
    prefix = f"it{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, specs=(IDENTITY_MERGES, LEADS_CHANGES, dead_letter_topic(IDENTITY_MERGES, "leads")))
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(topic, key, value, headers):
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)

    processor = RecordProcessor(service="leads", source_topic=IDENTITY_MERGES.name,
                                dead_letter_topic=dead_letter_topic(IDENTITY_MERGES, "leads").qualified(prefix),
                                send=send, topic_prefix=prefix)
    records = [IdentityChanged(merged("l", "w")).model_dump_json().encode(), b'{"kind": "renamed"}']
    try:
        for offset, value in enumerate(records):
            await processor.process(key=b"w", value=value, partition=0, offset=offset,
                                    decode=IdentityChanged.from_bytes, handle=chain.leads.on_identity_changed)
    finally:
        await producer.stop()

    out = [LeadUpdated.model_validate_json(r.value) for r in read_all(infra, LEADS_CHANGES.qualified(prefix))]
    assert [(c.one_id, c.lead.touchpoints) for c in out] == [("w", 3)]
    letters = [DeadLetterHeaders.from_headers(r.headers) for r in read_all(infra, f"{prefix}identity.merges.leads.dlq")]
    assert [(h.reason, h.source_offset, h.consumer) for h in letters] == [("validation_error", 1, "leads")]
