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
from services.notify.domain.tasks import Assignment, Consultant, assign, due_at, route, task_id, task_reason

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


def consultant(cid: str, store: str = "s-1", *, active: bool = True, capacity: int = 10, open_tasks: int = 0) -> Consultant:
    return Consultant(cid, store, active, capacity, open_tasks)


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
    assert assign(verify.lead, "verify_suspect_lead", [consultant("c-1")]) == Assignment(
        None, "verification_queue", "verification")
    sales = change(verdict=Verdict.SUSPECT, route=Route.SALES, grade=Grade.H)
    assert task_reason(sales, has_open_task=False) == "new_unverified_lead"


def test_an_owned_person_goes_back_to_the_owner_while_the_owner_can_take_it():
    owned = change(store_id="s-2", owner=Owner(consultant_id="c-own", store_id="s-1", since=NOW)).lead
    team = [consultant("c-own", "s-1"), consultant("c-2", "s-2")]
    assert assign(owned, "new_valid_lead", team) == Assignment("c-own", "owner")
    full = [consultant("c-own", "s-1", capacity=1, open_tasks=1), consultant("c-2", "s-2")]
    assert assign(owned, "new_valid_lead", full) == Assignment("c-2", "same_store_least_loaded")


def test_a_collision_ops_must_decide_goes_to_the_collision_queue():
    collision = Collision(owner_consultant_id="c-own", owner_store_id="s-1", store_id="s-2", event_id="e-9", at=NOW,
                          resolution=CollisionResolution.ASK_OPS)
    asked = change(grade=Grade.A, collision=collision, owner=Owner(consultant_id="c-own", store_id="s-1", since=NOW))
    assert task_reason(asked, has_open_task=False) == "store_collision"
    assert assign(asked.lead, "store_collision", [consultant("c-own")]) == Assignment(None, "collision_queue", "collision")
    kept = change(grade=Grade.A, collision=collision.model_copy(update={"resolution": CollisionResolution.KEEP_OWNER}))
    assert task_reason(kept, has_open_task=False) == "new_valid_lead"


def test_unreachable_lead_gets_no_task():
    assert task_reason(change(reachable=False, grade=Grade.H), has_open_task=False) is None


def test_no_second_task_while_one_is_open():
    assert task_reason(change(grade=Grade.H), has_open_task=True) is None


@pytest.mark.parametrize("grade", [Grade.O, Grade.F])
def test_customers_and_lost_get_no_task(grade):
    assert task_reason(change(grade=grade), has_open_task=False) is None


# ---- route -----------------------------------------------------------------------------------------


def test_same_store_is_preferred_over_a_less_loaded_other_store():
    team = [consultant("c-other", "s-2", open_tasks=0), consultant("c-same", "s-1", open_tasks=8)]
    assert route("s-1", team) == Assignment("c-same", "same_store_least_loaded")


def test_least_loaded_by_ratio_not_by_count():
    team = [consultant("c-a", capacity=4, open_tasks=2), consultant("c-b", capacity=10, open_tasks=3)]
    assert route("s-1", team) == Assignment("c-b", "same_store_least_loaded")


def test_ties_are_broken_by_consultant_id():
    team = [consultant("c-b", open_tasks=1, capacity=2), consultant("c-a", open_tasks=2, capacity=4)]
    assert route("s-1", team) == Assignment("c-a", "same_store_least_loaded")


def test_inactive_and_full_consultants_are_skipped():
    team = [
        consultant("c-a", active=False),
        consultant("c-b", capacity=3, open_tasks=3),
        consultant("c-c", capacity=0, open_tasks=0),
        consultant("c-z", "s-9", open_tasks=5),
    ]
    assert route("s-1", team) == Assignment("c-z", "tenant_least_loaded")


def test_no_store_means_tenant_wide_routing():
    team = [consultant("c-b", "s-1", open_tasks=1), consultant("c-a", "s-2", open_tasks=0)]
    assert route(None, team) == Assignment("c-a", "tenant_least_loaded")


def test_unknown_store_falls_back_to_tenant_wide():
    team = [consultant("c-b", "s-1", open_tasks=1), consultant("c-a", "s-2", open_tasks=3)]
    assert route("s-404", team) == Assignment("c-b", "tenant_least_loaded")


@pytest.mark.parametrize(
    "team",
    [[], [consultant("c-a", active=False)], [consultant("c-a", capacity=2, open_tasks=2)]],
)
def test_nobody_available_goes_to_the_unassigned_queue(team):
    assert route("s-1", team) == Assignment(None, "unassigned_queue")


_team = st.lists(
    st.builds(
        Consultant,
        consultant_id=st.text("abcdef", min_size=1, max_size=4),
        store_id=st.sampled_from(["s-1", "s-2"]),
        active=st.booleans(),
        capacity=st.integers(0, 5),
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
    chosen = route(store, team)
    assert route(store, shuffled) == chosen
    available = [c for c in team if c.active and c.open_tasks < c.capacity]
    if not available:
        assert chosen == Assignment(None, "unassigned_queue")
        return
    picked = next(c for c in team if c.consultant_id == chosen.consultant_id)
    assert picked in available
    same_store = [c for c in available if c.store_id == store]
    pool = same_store or available
    assert picked in pool
    assert chosen.rule == ("same_store_least_loaded" if same_store else "tenant_least_loaded")
    assert all(picked.open_tasks / picked.capacity <= c.open_tasks / c.capacity for c in pool)


# ---- due_at and task_id ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grade, delay",
    [
        (Grade.H, timedelta(minutes=15)),
        (Grade.A, timedelta(hours=2)),
        (Grade.B, timedelta(hours=24)),
        (Grade.C, timedelta(hours=72)),
        (Grade.O, timedelta(hours=72)),
        (Grade.F, timedelta(hours=72)),
    ],
)
def test_due_at_per_grade(grade, delay):
    assert due_at(grade, NOW) == NOW + delay


def test_task_id_is_deterministic_and_depends_on_every_part():
    tid = task_id("demo", "p-1", "e-1")
    assert tid == task_id("demo", "p-1", "e-1")
    assert len({tid, task_id("other", "p-1", "e-1"), task_id("demo", "p-2", "e-1"), task_id("demo", "p-1", "e-2")}) == 4


def test_task_id_parts_cannot_be_shifted():
    assert task_id("a", "bc", "d") != task_id("ab", "c", "d")
