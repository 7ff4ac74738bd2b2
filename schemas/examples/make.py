"""Write example messages of the current schema version (run: python -m schemas.examples.make).

Examples are history: once committed, a version's files are never edited or removed, and a unit
test makes today's models read every one of them. Run this only when a new version is released;
it writes files that are missing and leaves existing ones alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from leadflow.simulate.scenario import generate
from schemas.identity import (
    ErasureRequested,
    LinkedIdentifier,
    PersonErased,
    PersonsMerged,
    PersonSplit,
    RejectedIdentifier,
    ReviewDecided,
    SplitRequested,
    TouchpointIdentified,
)
from schemas.leads import Collision, LeadSnapshot, LeadUpdated, Owner, SourceAlerted, SourceCounts, Trigger
from schemas.ops import StreamAlerted
from schemas.scores import Contribution, ScoreChanged
from schemas.tasks import TaskCreated, TaskOutcomeRecorded

HERE = Path(__file__).parent
VERSION = "v1"
T = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def examples() -> dict[str, dict[str, str]]:
    """{model name: {example name: JSON}}."""
    out: dict[str, dict[str, str]] = {}

    def put(model: str, name: str, value) -> None:
        out.setdefault(model, {})[name] = value.model_dump_json(exclude_none=True, indent=2)

    seen_types: set[str] = set()
    for sim in generate("demo", seed=7, count=600, now=T)[0]:
        kind = sim.event.event_type.value
        if kind not in seen_types:
            seen_types.add(kind)
            put("TouchpointReceived", kind, sim.event)
    touchpoint = next(s.event for s in generate("demo", seed=7, count=50, now=T)[0] if s.event.identifiers)
    put("TouchpointIdentified", "form", TouchpointIdentified(
        tenant_id="demo", event_id=touchpoint.event_id, one_id="p-1", touchpoint=touchpoint,
        identifiers=[LinkedIdentifier(type="phone", link_id="ab" * 32, masked="139****0001")],
        rejected_identifiers=[RejectedIdentifier(type="vin", reason="vin_malformed")], identified_at=T))
    put("IdentityChanged", "merged", PersonsMerged(merge_id="m-1", tenant_id="demo", winner="p-1", loser="p-2",
                                                   cause_identifier_type="phone", event_id="e-1", merged_at=T))
    put("IdentityChanged", "merged_probabilistic", PersonsMerged(
        merge_id="m-2", tenant_id="demo", winner="p-1", loser="p-3", cause="probabilistic", match_score=0.97,
        event_id="e-2", merged_at=T))
    put("IdentityChanged", "split", PersonSplit(split_id="s-1", tenant_id="demo", source="p-1", new_one_id="p-4",
                                                moved_identifier_types=["email"], moved_event_ids=["e-3"],
                                                reason="两个人", requested_by="ops", event_id="c-1", split_at=T))
    put("IdentityChanged", "erased", PersonErased(erasure_id="x-1", tenant_id="demo", one_id="p-1",
                                                  one_ids=["p-1", "p-2"], requested_by="admin", event_id="c-2",
                                                  erased_at=T))
    put("IdentityCommanded", "split", SplitRequested(command_id="c-1", tenant_id="demo", one_id="p-1",
                                                     link_ids=["ab" * 32], requested_by="ops", requested_at=T))
    put("IdentityCommanded", "review", ReviewDecided(command_id="c-3", tenant_id="demo", review_id="p-1.p-5",
                                                     approve=True, decided_by="ops", decided_at=T))
    put("IdentityCommanded", "erase", ErasureRequested(command_id="c-2", tenant_id="demo", one_id="p-1",
                                                       requested_by="admin", requested_at=T))
    trigger = Trigger(event_id="e-1", event_type="form_submitted", occurred_at=T, channel="wechat_mp", store_id="s-1")
    lead = LeadSnapshot(verdict="valid", stage="lead", reachable=True, store_id="s-1", city="上海", name="张伟",
                        touchpoints=3, first_seen_at=T, last_seen_at=T)
    put("LeadUpdated", "form", LeadUpdated(change_id="l-1", tenant_id="demo", one_id="p-1", version=3,
                                           trigger=trigger, lead=lead, previous_stage="contact"))
    # Since v1.1: optional fields of the cleaned, assessed lead; a change that an outcome made.
    rich = LeadSnapshot(
        verdict="suspect", reasons=["virtual_operator"], stage="opportunity", reachable=True, store_id="s-2",
        city="杭州", province="浙江", product="Model Y", name="王先生", touchpoints=5, first_seen_at=T, last_seen_at=T,
        route="verification", budget_low=200_000, budget_high=300_000, problems=["unknown_product"],
        tags=["意向:Model Y", "预算:20-30万"], stage_entered_at=T, inquiries=1, repeat_inquiries=2, last_inquiry_at=T,
        owner=Owner(consultant_id="c-01", store_id="s-1", since=T),
        collision=Collision(owner_consultant_id="c-01", owner_store_id="s-1", store_id="s-2", event_id="e-9", at=T,
                            resolution="keep_owner"),
        referrer_one_id="p-9", referrals=1)
    put("LeadUpdated", "outcome_v1_1", LeadUpdated(change_id="l-2", tenant_id="demo", one_id="p-1", version=6,
                                                   trigger=trigger, lead=rich, previous_stage="lead", cause="outcome",
                                                   cause_id="o-1", repeat_inquiry=False))
    put("SourceAlerted", "campaign", SourceAlerted(
        alert_id="campaign:cmp-1:2026-11-22T08:00:00+00:00", tenant_id="demo", dimension="campaign", value="cmp-1",
        bucket=T, counts=SourceCounts(valid=12, suspect=20, junk=8), bad_rate=0.7, baseline=0.12,
        reason="bad_rate_above_baseline", raised_at=T))
    put("ScoreChanged", "graded", ScoreChanged(change_id="g-1", tenant_id="demo", one_id="p-1", score=62.5,
                                               grade="A", previous_grade="B",
                                               contributions=[Contribution(signal="form_submitted", label="留资",
                                                                           count=1, points=30)],
                                               trigger=trigger, lead=lead, scored_at=T))
    put("ScoreChanged", "decayed_v1_1", ScoreChanged(
        change_id="g-2", tenant_id="demo", one_id="p-1", score=41.0, grade="B", previous_grade="A",
        contributions=[Contribution(signal="test_drive_booked", label="试驾预约", count=1, points=25,
                                    last_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC), text="试驾预约 2 天前 +25",
                                    text_en="test drive booked 2 days ago +25"),
                       Contribution(signal="inactivity", label="无互动", count=1, points=-10, text="7 天无互动 −10",
                                    text_en="no interaction for 7 days −10")],
        trigger=trigger, lead=lead, scored_at=T, cause="decay", rules="car-dealer@1", rule_score=38.0,
        probability=0.52, blend_weight=0.12, model_version=140))
    put("StreamAlerted", "stalled", StreamAlerted(
        alert_id="consumer_stalled:leadflow-scoring:leads.changes:2026-11-22T08", kind="consumer_stalled",
        group="leadflow-scoring", topic="leads.changes", lag=1830, readings=3, raised_at=T))
    put("TaskCreated", "verification_v1_1", TaskCreated(
        task_id="t-2", tenant_id="demo", one_id="p-2", consultant_id=None, queue="verification", grade="B", score=40.0,
        reason="verify_suspect_lead", trigger_event_id="e-2", due_at=T, created_at=T))
    put("TaskCreated", "routed", TaskCreated(task_id="t-1", tenant_id="demo", one_id="p-1", consultant_id="c-01",
                                             grade="A", score=62.5, reason="new_valid_lead", trigger_event_id="e-1",
                                             due_at=T, created_at=T))
    put("TaskOutcomeRecorded", "contacted", TaskOutcomeRecorded(outcome_id="o-1", task_id="t-1", tenant_id="demo",
                                                                one_id="p-1", consultant_id="c-01", outcome="contacted",
                                                                recorded_at=T))
    return out


def main() -> None:
    for model, items in examples().items():
        folder = HERE / model
        folder.mkdir(exist_ok=True)
        for name, text in items.items():
            path = folder / f"{VERSION}-{name}.json"
            if not path.exists():
                path.write_text(text + "\n", encoding="utf-8")
                print(f"wrote {path.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
