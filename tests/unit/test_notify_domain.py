"""Notify domain: whether a score change deserves a task, routing, deadlines and task ids (pure)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.leads import Collision, CollisionResolution, LeadSnapshot, Owner, Route, Stage, Trigger, Verdict
from schemas.scores import Grade, ScoreChanged
from schemas.touchpoints import EventType
from services.notify.domain.routing import Assignment, Consultant, RoutingPolicy, Rule, Scope, Strategy, route
from services.notify.domain.tasks import Triggers, assign, decide, task_id, task_reason

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=timezone.utc)
NO_DB = settings(database=None)  # no .hypothesis/ example database on disk: these are pure tests


def change(
    *, grade: Grade = Grade.B, verdict: Verdict = Verdict.VALID, reachable: bool = True, store_id: str | None = "s-1",
    **lead_fields,
) -> ScoreChanged:
    return ScoreChanged(
        change_id="c-1",
        tenant_id="demo",
        one_id="p-1",
        score=30.0,
        grade=grade,
        trigger=Trigger(event_id="e-1", event_type=EventType.FORM_SUBMITTED, occurred_at=NOW, channel="site"),
        lead=LeadSnapshot(
            verdict=verdict, stage=Stage.LEAD, reachable=reachable, store_id=store_id,
            touchpoints=1, first_seen_at=NOW, last_seen_at=NOW, **lead_fields,
        ),
        scored_at=NOW,
    )


def consultant(cid: str, store: str = "s-1", *, active: bool = True, capacity: int = 10, open_tasks: int = 0,
               **fields) -> Consultant:
    return Consultant(cid, store, active, capacity, open_tasks, **fields)


def _who(a: Assignment) -> tuple[str | None, str]:
    return a.consultant_id, a.rule


def lead_at(store_id: str | None, **fields) -> LeadSnapshot:
    return LeadSnapshot(verdict=Verdict.VALID, stage=Stage.LEAD, reachable=True, store_id=store_id, touchpoints=1,
                        first_seen_at=NOW, last_seen_at=NOW, **fields)


def routed(store_id, team, policy: RoutingPolicy = RoutingPolicy(), grade: str = "B", **lead_fields) -> tuple:
    return _who(route(lead_at(store_id, **lead_fields), grade, team, policy, today=NOW.date(), now=NOW))


# ---- task_reason -----------------------------------------------------------------------------------


@pytest.mark.parametrize("grade", [Grade.H, Grade.A, Grade.B, Grade.C])
def test_valid_reachable_lead_without_open_task_gets_a_task(grade):
    assert task_reason(change(grade=grade), has_open_task=False) == "new_valid_lead"


def test_junk_never_reaches_anybody_whatever_the_route():
    for route_ in Route:
        assert task_reason(change(verdict=Verdict.JUNK, route=route_, grade=Grade.H), has_open_task=False) is None
    assert task_reason(change(route=Route.NONE, grade=Grade.H), has_open_task=False) is None


def test_suspect_leads_go_to_verification_or_to_sales_as_unverified():
    verify = change(verdict=Verdict.SUSPECT, route=Route.VERIFICATION, grade=Grade.H)
    assert task_reason(verify, has_open_task=False) == "verify_suspect_lead"
    assert assign(verify.lead, "verify_suspect_lead", [consultant("c-1")]).queue == "verification"
    sales = change(verdict=Verdict.SUSPECT, route=Route.SALES, grade=Grade.H)
    assert task_reason(sales, has_open_task=False) == "new_unverified_lead"


def test_an_owned_person_goes_back_to_the_owner_while_the_owner_can_take_it():
    owned = change(store_id="s-2", owner=Owner(consultant_id="c-own", store_id="s-1", since=NOW)).lead
    team = [consultant("c-own", "s-1"), consultant("c-2", "s-2")]
    assert assign(owned, "new_valid_lead", team, now=NOW).rule == "owner"
    full = [consultant("c-own", "s-1", capacity=1, open_tasks=1), consultant("c-2", "s-2")]
    assert _who(assign(owned, "new_valid_lead", full, now=NOW)) == ("c-2", "same_store_least_loaded")
    # The protection ends: the owner no longer takes the person back.
    later = NOW + timedelta(days=31)
    assert _who(assign(owned, "new_valid_lead", team, now=later)) == ("c-2", "same_store_least_loaded")


def test_a_collision_ops_must_decide_goes_to_the_collision_queue():
    collision = Collision(owner_consultant_id="c-own", owner_store_id="s-1", store_id="s-2", event_id="e-9", at=NOW,
                          resolution=CollisionResolution.ASK_OPS)
    asked = change(grade=Grade.A, collision=collision, owner=Owner(consultant_id="c-own", store_id="s-1", since=NOW))
    assert task_reason(asked, has_open_task=False) == "store_collision"
    assert assign(asked.lead, "store_collision", [consultant("c-own")]).queue == "collision"
    kept = change(grade=Grade.A, collision=collision.model_copy(update={"resolution": CollisionResolution.KEEP_OWNER}))
    assert task_reason(kept, has_open_task=False) == "new_valid_lead"


def test_unreachable_lead_gets_no_task():
    assert task_reason(change(reachable=False, grade=Grade.H), has_open_task=False) is None


def test_no_second_task_while_one_is_open():
    assert task_reason(change(grade=Grade.H), has_open_task=True) is None


@pytest.mark.parametrize("grade", [Grade.O, Grade.F])
def test_customers_and_lost_get_no_task(grade):
    assert task_reason(change(grade=grade), has_open_task=False) is None


# ---- triggers after the first task ------------------------------------------------------------------


def later_change(grade: Grade, previous: Grade | None, kind: EventType = EventType.PAGE_VIEWED, **lead) -> ScoreChanged:
    c = change(grade=grade, **lead)
    return c.model_copy(update={"previous_grade": previous, "trigger": c.trigger.model_copy(update={"event_type": kind})})


@pytest.mark.parametrize("grade, previous, kind, fired", [
    (Grade.A, Grade.B, EventType.PAGE_VIEWED, "grade_rose"),
    (Grade.H, Grade.A, EventType.PAGE_VIEWED, "grade_rose"),
    (Grade.B, Grade.C, EventType.PAGE_VIEWED, None),  # B is not a grade that calls for a task by default
    (Grade.A, Grade.A, EventType.PAGE_VIEWED, None),
    (Grade.B, Grade.A, EventType.PAGE_VIEWED, None),
    (Grade.B, Grade.B, EventType.TEST_DRIVE_BOOKED, "high_intent"),
    (Grade.C, Grade.C, EventType.QUOTE_REQUESTED, "high_intent"),
])
def test_after_the_first_task_only_the_tenants_triggers_make_another(grade, previous, kind, fired):
    decision = decide(later_change(grade, previous, kind), Triggers(), has_open_task=False, first=False)
    assert (decision.reason if decision else None) == (None if fired is None else fired)


def test_a_dormant_customer_coming_back_and_a_replacement_candidate_trigger():
    base = later_change(Grade.C, Grade.C)
    back = base.model_copy(update={"lead": base.lead.model_copy(update={"stage": Stage.REACTIVATED})})
    assert decide(back, Triggers(), has_open_task=False, first=False).reason == "reactivated"
    assert decide(back, Triggers(reactivated=False), has_open_task=False, first=False) is None
    swap = later_change(Grade.C, Grade.C, EventType.STORE_VISITED, replacement_candidate=True)
    assert decide(swap, Triggers(), has_open_task=False, first=False).reason == "replacement_candidate_active"


def test_with_an_open_task_a_trigger_refreshes_it_instead_of_making_a_second():
    decision = decide(later_change(Grade.H, Grade.B), Triggers(), has_open_task=True, first=False)
    assert (decision.reason, decision.create) == ("grade_rose", False)
    assert task_reason(later_change(Grade.H, Grade.B), has_open_task=True, first=False) is None


def test_triggers_parse_and_name_a_bad_key():
    t = Triggers.from_mapping({"grades_up": ["H"], "high_intent": ["store_visited"], "min_grade": "B"})
    assert t.grades_up == {Grade.H} and t.high_intent == {EventType.STORE_VISITED} and t.min_grade is Grade.B
    assert decide(later_change(Grade.C, None), t, has_open_task=False, first=True) is None  # below min_grade
    with pytest.raises(ValueError, match="grade_up"):
        Triggers.from_mapping({"grade_up": ["H"]})
    with pytest.raises(ValueError, match="verification: true or false"):
        Triggers.from_mapping({"verification": "yes"})


# ---- route -----------------------------------------------------------------------------------------


def test_same_store_is_preferred_over_a_less_loaded_other_store():
    team = [consultant("c-other", "s-2", open_tasks=0), consultant("c-same", "s-1", open_tasks=8)]
    assert routed("s-1", team) == ("c-same", "same_store_least_loaded")


def test_least_loaded_by_ratio_not_by_count_and_ties_by_id():
    assert routed("s-1", [consultant("c-a", capacity=4, open_tasks=2), consultant("c-b", capacity=10, open_tasks=3)]) \
        == ("c-b", "same_store_least_loaded")
    assert routed("s-1", [consultant("c-b", open_tasks=1, capacity=2), consultant("c-a", open_tasks=2, capacity=4)]) \
        == ("c-a", "same_store_least_loaded")


def test_inactive_full_off_duty_and_on_leave_consultants_are_skipped():
    team = [
        consultant("c-a", active=False),
        consultant("c-b", capacity=3, open_tasks=3),
        consultant("c-c", on_duty=False),
        consultant("c-d", leave=frozenset({NOW.date()})),
        consultant("c-z", "s-9", open_tasks=5),
    ]
    assert routed("s-1", team) == ("c-z", "tenant_least_loaded")


def test_no_store_means_tenant_wide_and_nobody_means_the_managers_queue():
    assert routed(None, [consultant("c-b", "s-1", open_tasks=1), consultant("c-a", "s-2")]) == ("c-a", "tenant_least_loaded")
    assignment = route(lead_at("s-1"), "B", [consultant("c-a", active=False)], RoutingPolicy(), today=NOW.date(), now=NOW)
    assert (assignment.consultant_id, assignment.queue, assignment.store_id) == (None, "manager", "s-1")
    assert routed(None, []) == (None, "unassigned_queue")


def test_rules_match_on_grade_product_and_skills_and_every_assignment_says_why():
    policy = RoutingPolicy(rules=(Rule("vip", Scope.TENANT, grades=frozenset({"H"}), skills=frozenset({"vip"})),
                                  Rule("same_store", Scope.STORE)))
    team = [consultant("c-vip", "s-2", skills=frozenset({"vip"}), open_tasks=5), consultant("c-1", "s-1")]
    assert routed("s-1", team, policy, grade="H") == ("c-vip", "vip_least_loaded")
    assert routed("s-1", team, policy, grade="A") == ("c-1", "same_store_least_loaded")
    sells = [consultant("c-byd", products=frozenset({"汉"})), consultant("c-tesla", products=frozenset({"Model Y"}), open_tasks=3)]
    assert routed("s-1", sells, product="Model Y") == ("c-tesla", "same_store_least_loaded")
    why = route(lead_at("s-1"), "B", team, policy, today=NOW.date(), now=NOW).why
    assert "same_store" in why and "负载最低" in why


def test_region_scope_uses_the_stores_region():
    policy = RoutingPolicy(rules=(Rule("region", Scope.REGION),), store_regions={"s-1": "华东", "s-2": "华东", "s-3": "华南"})
    team = [consultant("c-south", "s-3"), consultant("c-east", "s-2", open_tasks=4)]
    assert routed("s-1", team, policy) == ("c-east", "region_least_loaded")


def test_a_rotation_weighted_by_conversion_gives_the_better_converter_more_leads():
    policy = RoutingPolicy(strategy=Strategy.ROTATION, performance_weight=1.0)
    team = {"c-good": consultant("c-good", conversion=0.3, capacity=1000), "c-avg": consultant("c-avg", conversion=0.1, capacity=1000)}
    for _ in range(80):
        chosen, _ = routed("s-1", list(team.values()), policy)
        c = team[chosen]
        team[chosen] = Consultant(**{**c.__dict__, "assigned": c.assigned + 1})
    assert team["c-good"].assigned > 1.5 * team["c-avg"].assigned
    plain = RoutingPolicy(strategy=Strategy.ROTATION)  # no weighting: turns
    team2 = [consultant("c-1", assigned=3), consultant("c-2", assigned=2, open_tasks=9)]
    assert routed("s-1", team2, plain) == ("c-2", "same_store_rotation")


def test_routing_policy_parses_and_names_bad_keys():
    policy = RoutingPolicy.from_mapping({"strategy": "rotation", "rules": [{"name": "vip", "scope": "tenant", "skills": ["vip"]}]})
    assert policy.rules[0].skills == {"vip"} and policy.strategy is Strategy.ROTATION
    with pytest.raises(ValueError, match=r"rules\[0\]: unknown keys skill"):
        RoutingPolicy.from_mapping({"rules": [{"name": "x", "skill": ["vip"]}]})
    with pytest.raises(ValueError, match="performance_weight"):
        RoutingPolicy.from_mapping({"performance_weight": 2})


_team = st.lists(
    st.builds(
        Consultant,
        consultant_id=st.text("abcdef", min_size=1, max_size=4),
        store_id=st.sampled_from(["s-1", "s-2"]),
        active=st.booleans(),
        capacity=st.integers(1, 5),
        open_tasks=st.integers(0, 6),
    ),
    max_size=8,
    unique_by=lambda c: c.consultant_id,
)


@NO_DB
@given(_team, st.sampled_from(["s-1", "s-2", None]), st.randoms(use_true_random=False))
def test_route_is_independent_of_order_and_picks_an_available_consultant(team, store, rnd: random.Random):
    shuffled = list(team)
    rnd.shuffle(shuffled)
    chosen = routed(store, team)
    assert routed(store, shuffled) == chosen
    available = [c for c in team if c.active and c.open_tasks < c.capacity]
    if not available:
        assert chosen[0] is None
        return
    picked = next(c for c in team if c.consultant_id == chosen[0])
    same_store = [c for c in available if c.store_id == store]
    pool = same_store or available
    assert picked in pool
    assert chosen[1] == ("same_store_least_loaded" if same_store else "tenant_least_loaded")
    assert all(picked.open_tasks / picked.capacity <= c.open_tasks / c.capacity for c in pool)


# ---- task_id ---------------------------------------------------------------------------------------


def test_task_id_is_deterministic_and_depends_on_every_part():
    tid = task_id("demo", "p-1", "e-1")
    assert tid == task_id("demo", "p-1", "e-1")
    assert len({tid, task_id("other", "p-1", "e-1"), task_id("demo", "p-2", "e-1"), task_id("demo", "p-1", "e-2")}) == 4


def test_task_id_parts_cannot_be_shifted():
    assert task_id("a", "bc", "d") != task_id("ab", "c", "d")
