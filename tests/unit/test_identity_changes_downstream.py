"""Merges, splits and erasures downstream, the pure part: folding two leads, rebuilding a lead from its
touchpoints, merging and splitting score signals, choosing which open tasks survive a merge."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.leads import LeadSnapshot, Stage, Trigger, Verdict
from schemas.touchpoints import EventType
from services.leads.domain.lead import RECENT_EVENTS_KEPT, Lead
from services.leads.domain.merging import fold, rebuild
from services.leads.domain.stages import CauseType
from services.notify.domain.merging import OpenTask, one_per_consultant, primary
from services.scoring.domain.merging import History, covers, join, later, split, union_signals
from services.scoring.domain.score import SIGNALS_KEPT, Signal
from tests.unit.leads_kit import POLICY, T0, device, filed, form, identified, lead_of

NO_DB = settings(database=None)  # no .hypothesis/ example database on disk: these are pure tests
M_AT = T0 + timedelta(hours=1)


def folded_of(winner: Lead, loser: Lead, merge_id: str = "m1"):
    return fold(winner, loser, merge_id=merge_id, at=M_AT, policy=POLICY)


# ---- leads: fold ----------------------------------------------------------------------------------


def test_fold_adds_up_touchpoints_and_takes_the_furthest_stage():
    winner = lead_of("w", identified("w1", minute=0), identified("w2", EventType.WECHAT_FOLLOWED, minute=5))
    loser = lead_of("l", form("l1", minute=10, name="张伟", city="上海"))
    folded, transition = folded_of(winner, loser)
    assert folded.one_id == "w" and folded.tenant_id == "t1"
    assert folded.touchpoints == 3 and folded.version == winner.version + 1
    assert folded.stage is Stage.LEAD and folded.reachable
    assert (folded.name, folded.city) == ("张伟", "上海")
    assert (folded.first_seen_at, folded.last_seen_at) == (T0, T0 + timedelta(minutes=10))
    assert folded.absorbed == ("l",)
    assert set(folded.recent_event_ids) == {"w1", "w2", "l1"}
    assert folded.last_trigger.event_id == "l1"
    assert folded.event_counts == {"page_viewed": 1, "wechat_followed": 1, "form_submitted": 1}
    assert (transition.from_stage, transition.to_stage, transition.cause, transition.cause_type) == (
        Stage.FOLLOWER, Stage.LEAD, "m1", CauseType.MERGE)


def test_fold_twice_changes_nothing():
    winner = lead_of("w", form("w1"))
    loser = lead_of("l", identified("l1", minute=3))
    once, _ = folded_of(winner, loser)
    assert folded_of(once, loser) == (once, None)
    assert folded_of(once, replace(loser, touchpoints=99))[0] is once  # the loser is known by its one_id


def test_fold_carries_what_the_loser_absorbed():
    a = lead_of("a", identified("a1"))
    b, _ = folded_of(lead_of("b", identified("b1", minute=1)), a)
    c, _ = folded_of(lead_of("c", identified("c1", minute=2)), b)
    assert c.absorbed == ("b", "a") and c.touchpoints == 3
    assert folded_of(c, a)[0] is c  # a merge of `a` replayed after the chain changes nothing


def test_fold_into_nothing_takes_the_losers_lead():
    loser = lead_of("l", identified("l1", EventType.WECHAT_FOLLOWED), form("l2", minute=2, name="李娜"))
    folded, transition = folded_of(Lead(tenant_id="t1", one_id="w"), loser)
    assert folded.one_id == "w" and folded.absorbed == ("l",)
    assert (folded.stage, folded.name, folded.touchpoints, folded.reachable) == (Stage.LEAD, "李娜", 2, True)
    assert transition.from_stage is None and transition.to_stage is Stage.LEAD


def test_a_valid_contact_of_either_person_makes_a_valid_lead():
    junk = replace(lead_of("w", identified("w1")), verdict=Verdict.JUNK, reasons=("test_number",))
    valid = lead_of("l", form("l1", minute=1))
    assert folded_of(junk, valid)[0].verdict is Verdict.VALID and folded_of(junk, valid)[0].reasons == ()
    assert folded_of(valid, junk)[0].verdict is Verdict.VALID


def test_suspicion_outweighs_junk_and_keeps_its_reasons():
    suspect = lead_of("w", identified("w1", EventType.FORM_SUBMITTED, linked=(device(),), user_agent="curl/8.4.0"))
    junk = replace(lead_of("l", identified("l1", minute=1)), verdict=Verdict.JUNK, reasons=("test_number",))
    folded, _ = folded_of(suspect, junk)
    assert folded.verdict is Verdict.SUSPECT and folded.reasons == ("bot_user_agent",)
    assert folded_of(lead_of("w", identified("w1")), junk)[0].verdict is Verdict.JUNK


def test_fold_keeps_the_most_recent_event_ids_of_the_loser():
    winner = lead_of("w", *(identified(f"w{n}", minute=n) for n in range(RECENT_EVENTS_KEPT)))
    loser = lead_of("l", identified("l1", minute=1))
    folded, _ = folded_of(winner, loser)
    assert len(folded.recent_event_ids) == RECENT_EVENTS_KEPT and folded.recent_event_ids[-1] == "l1"


def test_a_merge_within_the_same_stage_is_no_transition():
    winner = lead_of("w", form("w1"))
    assert folded_of(winner, lead_of("x", identified("x1")))[1] is None


# ---- leads: rebuild -------------------------------------------------------------------------------


def _journey():
    return [
        identified("e1", EventType.PAGE_VIEWED, minute=0),
        identified("e2", EventType.WECHAT_FOLLOWED, minute=1),
        form("e3", minute=2, name="王芳", car_model="Model Y"),
        identified("e4", EventType.TEST_DRIVE_BOOKED, minute=3, store_id="s1"),
        identified("e5", EventType.PAGE_VIEWED, minute=4),
    ]


def test_rebuild_is_apply_in_the_order_things_happened():
    events = _journey()
    lead, transitions = rebuild("t1", "w", [filed(e) for e in events], POLICY)
    assert lead == lead_of("w", *events)
    assert [(t.from_stage, t.to_stage) for t in transitions] == [
        (None, Stage.ANONYMOUS), (Stage.ANONYMOUS, Stage.FOLLOWER), (Stage.FOLLOWER, Stage.LEAD),
        (Stage.LEAD, Stage.OPPORTUNITY)]


@NO_DB
@given(st.randoms(use_true_random=False))
def test_rebuild_does_not_depend_on_the_order_of_arrival(rnd: random.Random):
    entries = [filed(e) for e in _journey()]
    shuffled = entries[:]
    rnd.shuffle(shuffled)
    assert rebuild("t1", "w", entries, POLICY) == rebuild("t1", "w", shuffled, POLICY)


def test_a_split_rebuilds_two_persons_whose_touchpoints_add_up():
    events = _journey()
    moved = {"e3", "e4"}
    source, _ = rebuild("t1", "s", [filed(e) for e in events if e.event_id not in moved], POLICY)
    new, transitions = rebuild("t1", "n", [filed(e) for e in events if e.event_id in moved], POLICY)
    assert source.touchpoints + new.touchpoints == len(events)
    assert source.stage is Stage.FOLLOWER and not source.reachable and source.name is None
    assert new.stage is Stage.OPPORTUNITY and new.name == "王芳" and new.reachable
    assert transitions[0].from_stage is None and new.last_trigger.event_id == "e4"


def test_rebuild_keeps_the_verdict_each_touchpoint_got_at_the_time():
    brushed = filed(form("e1"))
    brushed = replace(brushed, assessment=replace(brushed.assessment, verdict=Verdict.JUNK, reasons=("device_velocity",)))
    lead, _ = rebuild("t1", "w", [brushed], POLICY)
    assert lead.verdict is Verdict.JUNK and lead.reasons == ("device_velocity",)


def test_rebuild_of_nothing_is_an_empty_lead():
    lead, transitions = rebuild("t1", "w", [], POLICY)
    assert lead == Lead(tenant_id="t1", one_id="w") and transitions == []


# ---- scoring: signals -----------------------------------------------------------------------------


def sig(event_id: str, minutes: int = 0, kind: EventType = EventType.PAGE_VIEWED) -> Signal:
    return Signal(event_id, kind, T0 + timedelta(minutes=minutes))


def trig(event_id: str, minutes: int = 0) -> Trigger:
    return Trigger(event_id=event_id, event_type=EventType.PAGE_VIEWED, occurred_at=T0 + timedelta(minutes=minutes),
                   channel="site")


SNAPSHOT = LeadSnapshot(verdict=Verdict.VALID, stage=Stage.LEAD, reachable=True, touchpoints=1,
                        first_seen_at=T0, last_seen_at=T0)


def test_signals_unite_once_per_event_in_time_order():
    united = union_signals((sig("b", 2), sig("a", 1)), (sig("a", 1), sig("c", 0)))
    assert [s.event_id for s in united] == ["c", "a", "b"]


def test_the_union_keeps_the_newest_signals():
    united = union_signals(tuple(sig(f"w{n}", n) for n in range(SIGNALS_KEPT)), (sig("l", SIGNALS_KEPT),))
    assert len(united) == SIGNALS_KEPT and united[-1].event_id == "l" and united[0].event_id == "w1"


def test_join_folds_the_loser_and_is_idempotent():
    winner = History(signals=(sig("w1"),), triggers=("w1",), lead=SNAPSHOT, lead_version=3, trigger=trig("w1"))
    loser = History(signals=(sig("l1", 5),), triggers=("l1",), lead=SNAPSHOT.model_copy(update={"touchpoints": 9}),
                    lead_version=7, trigger=trig("l1", 5))
    joined = join(winner, loser)
    assert [s.event_id for s in joined.signals] == ["w1", "l1"] and set(joined.triggers) == {"w1", "l1"}
    assert joined.lead == SNAPSHOT and joined.lead_version == 3  # the winner's snapshot stays
    assert joined.trigger.event_id == "l1"
    assert join(joined, loser) == joined and covers(joined, loser) and not covers(winner, loser)


def test_join_into_a_person_scoring_has_not_met_takes_the_losers_snapshot_provisionally():
    loser = History(signals=(sig("l1"),), triggers=("l1",), lead=SNAPSHOT, lead_version=7, trigger=trig("l1"))
    joined = join(History(), loser)
    assert joined.lead == SNAPSHOT and joined.lead_version == 0  # any change of the winner replaces it


def test_split_partitions_signals_and_remembers_where_they_went():
    source = History(signals=(sig("a"), sig("b", 1), sig("c", 2)), triggers=("a", "b", "c"), lead=SNAPSHOT,
                     lead_version=4, trigger=trig("c", 2))
    staying, moving = split(source, {"b", "c"}, to="n")
    assert [s.event_id for s in staying.signals] == ["a"] and staying.triggers == ("a",)
    assert [s.event_id for s in moving.signals] == ["b", "c"] and moving.triggers == ("b", "c")
    assert staying.trigger is None and moving.trigger.event_id == "c"  # the newest trigger left with them
    assert moving.lead is None and staying.lead == SNAPSHOT
    assert staying.moved_to("b") == "n" and staying.moved_to("a") is None
    again, nothing = split(staying, {"b", "c"}, to="n")
    assert again == staying and nothing == History()


def test_later_trigger():
    assert later(trig("a", 1), trig("b", 2)).event_id == "b"
    assert later(trig("a", 2), trig("b", 1)).event_id == "a"
    assert later(None, trig("b")).event_id == "b" and later(None, None) is None


# ---- notify: which open tasks survive ------------------------------------------------------------


def task(task_id: str, consultant: str | None, minutes: int) -> OpenTask:
    return OpenTask(task_id, consultant, T0 + timedelta(minutes=minutes))


def test_the_oldest_task_of_each_consultant_stays_open():
    kept, closing = one_per_consultant([task("young", "c1", 5), task("old", "c1", 1), task("other", "c2", 3)])
    assert [t.task_id for t in kept] == ["old", "other"]
    assert [(dup.task_id, instead.task_id) for dup, instead in closing] == [("young", "old")]


def test_the_unassigned_queue_counts_as_one_consultant():
    kept, closing = one_per_consultant([task("a", None, 1), task("b", None, 2)])
    assert [t.task_id for t in kept] == ["a"] and closing[0][0].task_id == "b"


def test_equal_ages_are_broken_by_task_id():
    kept, closing = one_per_consultant([task("b", "c1", 1), task("a", "c1", 1)])
    assert kept[0].task_id == "a" and closing[0][0].task_id == "b"


@NO_DB
@given(st.lists(st.tuples(st.sampled_from(["c1", "c2", None]), st.integers(0, 100)), max_size=12))
def test_at_most_one_open_task_per_consultant_and_none_lost(specs):
    tasks = [task(f"t{n}", c, m) for n, (c, m) in enumerate(specs)]
    kept, closing = one_per_consultant(tasks)
    assert len({t.consultant_id for t in kept}) == len(kept)
    assert sorted(t.task_id for t in kept + [dup for dup, _ in closing]) == sorted(t.task_id for t in tasks)
    assert all(instead.consultant_id == dup.consultant_id and instead.created_at <= dup.created_at
               for dup, instead in closing)


def test_the_slot_keeps_naming_its_task_while_it_stays_open():
    kept = [task("old", "c1", 1), task("mine", "c2", 3)]
    assert primary(kept, "mine") == "mine"
    assert primary(kept, "closed") == "old" and primary(kept, None) == "old"
    assert primary([], "x") is None
