"""The customer lifecycle as a pure, table-driven state machine. No I/O and no clock: `now` is passed in.

`advance(state, signal, policy, now)` returns the new state and the stage transition, if any. A signal is
a touchpoint (`Touch`), what a consultant reported (`Progressed`, `MarkedLost`, `NotAnswered`, made by
`outcomes.py`), a timer tick (`Tick`), a merge of two persons (`Merged`) or a referral credited to the
referrer (`ReferralCredited`).

Main path, forward only: anonymous → follower → contact → lead → opportunity → customer → loyal.
Side states: lost (always with a reason), dormant (no activity for N days, per stage, found by a tick)
and reactivated (a lost or dormant person active again). A side state keeps `stage_before`, the
main-path stage the person held, so funnels count them where they were.

The service deduplicates replays (by event id) and never applies the same merge twice: the machine
counts what it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any

from schemas.leads import Stage
from schemas.touchpoints import EventType

MAIN_PATH: tuple[Stage, ...] = (
    Stage.ANONYMOUS,
    Stage.FOLLOWER,
    Stage.CONTACT,
    Stage.LEAD,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
    Stage.LOYAL,
)
SIDE_STATES: frozenset[Stage] = frozenset({Stage.LOST, Stage.DORMANT, Stage.REACTIVATED})
RANK: Mapping[Stage, int] = {stage: rank for rank, stage in enumerate(MAIN_PATH)}

# The main-path stage a touchpoint points to; the machine only ever moves forward towards it.
# CONTACT and LEAD are one target: a person a consultant can reach (a phone) is a lead, else a contact.
TOUCH_TARGET: Mapping[EventType, Stage] = {
    EventType.WECHAT_FOLLOWED: Stage.FOLLOWER,
    EventType.CONTENT_ENGAGED: Stage.FOLLOWER,
    EventType.WECOM_CONTACT_ADDED: Stage.CONTACT,
    EventType.CHAT_MESSAGE: Stage.CONTACT,
    EventType.FORM_SUBMITTED: Stage.LEAD,
    EventType.CALL_LOGGED: Stage.LEAD,
    # On the referred person's timeline (ReferralAttributes name the referrer): a friend's
    # introduction with a phone is a lead. The referrer's credit is `ReferralCredited`.
    EventType.REFERRAL_MADE: Stage.LEAD,
    EventType.PRICE_INQUIRED: Stage.OPPORTUNITY,
    EventType.TEST_DRIVE_BOOKED: Stage.OPPORTUNITY,
    EventType.STORE_VISITED: Stage.OPPORTUNITY,
    EventType.QUOTE_REQUESTED: Stage.OPPORTUNITY,
    EventType.DEPOSIT_PAID: Stage.CUSTOMER,
    EventType.ORDER_PLACED: Stage.CUSTOMER,
    EventType.PURCHASE_COMPLETED: Stage.CUSTOMER,
}
# Things the person did that are not a return: they never refresh activity or reactivate anyone.
PASSIVE_EVENTS: frozenset[EventType] = frozenset({EventType.UNSUBSCRIBED, EventType.WECHAT_UNFOLLOWED})
# Touchpoints that move nobody but are activity: page views, service visits before a purchase, complaints.
ACTIVITY_ONLY_EVENTS: frozenset[EventType] = frozenset(set(EventType) - set(TOUCH_TARGET) - PASSIVE_EVENTS)

DEFAULT_LOST_REASONS: tuple[str, ...] = ("price", "bought_elsewhere", "no_budget", "unreachable", "not_interested", "other")
OTHER_REASON = "other"
DEFAULT_DORMANT_AFTER: Mapping[Stage, timedelta | None] = {
    Stage.ANONYMOUS: None,
    Stage.FOLLOWER: timedelta(days=90),
    Stage.CONTACT: timedelta(days=60),
    Stage.LEAD: timedelta(days=30),
    Stage.OPPORTUNITY: timedelta(days=21),
    Stage.CUSTOMER: None,
    Stage.LOYAL: None,
}


class LifecycleError(ValueError):
    """A signal the machine must not take (e.g. lost without a known reason), or a bad policy."""


class CauseType(StrEnum):
    TOUCHPOINT = "touchpoint"
    OUTCOME = "outcome"
    TIMER = "timer"
    MERGE = "merge"
    REFERRAL = "referral"


TIMER_CAUSE = "timer"


@dataclass(frozen=True)
class LifecyclePolicy:
    """Per-tenant lifecycle settings. `dormant_after[stage]` None: that stage never goes dormant."""

    lost_reasons: tuple[str, ...] = DEFAULT_LOST_REASONS
    dormant_after: Mapping[Stage, timedelta | None] = field(default_factory=lambda: dict(DEFAULT_DORMANT_AFTER))
    loyal_after_service_visits: int = 2  # service visits since the purchase that make a customer loyal
    unreachable_after_no_answers: int = 3  # no-answers in a row
    same_purchase_within: timedelta = timedelta(days=30)  # a purchase closer than this to the last is the same deal
    service_visits_kept: int = 64

    def __post_init__(self) -> None:
        if OTHER_REASON not in self.lost_reasons:
            raise LifecycleError(f"lost_reasons must contain {OTHER_REASON!r} (the reason of unknown reasons)")
        if any(not r or r != r.strip() for r in self.lost_reasons) or len(set(self.lost_reasons)) != len(self.lost_reasons):
            raise LifecycleError("lost_reasons must be unique, non-empty and without surrounding spaces")
        unknown = set(self.dormant_after) - set(MAIN_PATH)
        if unknown:
            names = ", ".join(sorted(str(s) for s in unknown))
            raise LifecycleError(f"dormant_after is per main-path stage; not for {names} (reactivated uses stage_before)")
        if any(d is not None and d <= timedelta(0) for d in self.dormant_after.values()):
            raise LifecycleError("dormant_after must be positive or None (never dormant)")
        if self.loyal_after_service_visits < 1 or self.unreachable_after_no_answers < 1 or self.service_visits_kept < 1:
            raise LifecycleError("loyal_after_service_visits, unreachable_after_no_answers and service_visits_kept must be >= 1")
        if self.same_purchase_within < timedelta(0):
            raise LifecycleError("same_purchase_within must not be negative")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> LifecyclePolicy:
        """A policy from plain data (TOML): `dormant_after_days = {lead = 30, customer = 0}`, 0 meaning never."""
        known = {"lost_reasons", "dormant_after_days", "loyal_after_service_visits", "unreachable_after_no_answers",
                 "same_purchase_within_days", "service_visits_kept"}
        extra = set(data) - known
        if extra:
            raise LifecycleError(f"unknown lifecycle policy keys: {', '.join(sorted(extra))}")
        kwargs: dict[str, Any] = {}
        if "lost_reasons" in data:
            kwargs["lost_reasons"] = tuple(data["lost_reasons"])
        if "dormant_after_days" in data:
            dormant = dict(DEFAULT_DORMANT_AFTER)
            for name, days in data["dormant_after_days"].items():
                try:
                    stage = Stage(name)
                except ValueError:
                    raise LifecycleError(f"dormant_after_days: unknown stage {name!r}") from None
                if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                    raise LifecycleError(f"dormant_after_days.{name}: a whole number of days >= 0 (0: never)")
                dormant[stage] = timedelta(days=days) if days else None
            kwargs["dormant_after"] = dormant
        if "same_purchase_within_days" in data:
            kwargs["same_purchase_within"] = timedelta(days=data["same_purchase_within_days"])
        for key in ("loyal_after_service_visits", "unreachable_after_no_answers", "service_visits_kept"):
            if key in data:
                kwargs[key] = data[key]
        return cls(**kwargs)


@dataclass(frozen=True)
class LifecycleState:
    """Where a person is in the lifecycle, and the facts the machine needs to move them on."""

    stage: Stage = Stage.ANONYMOUS
    stage_before: Stage | None = None  # in a side state: the main-path stage held before it; else None
    entered_at: datetime | None = None  # None: nothing has happened to this person yet
    last_activity_at: datetime | None = None
    lost_reason: str | None = None  # set exactly while lost
    reachable: bool = False
    purchased_at: datetime | None = None  # the latest purchase
    purchased_product: str | None = None
    service_visits: tuple[datetime, ...] = ()  # since the latest purchase, oldest first
    repurchases: int = 0
    referrals: int = 0  # persons this person referred
    referred: bool = False  # this person came by a referral
    referrer_one_id: str | None = None
    unsubscribed: bool = False
    no_answer_streak: int = 0
    unreachable: bool = False

    @property
    def service_visits_since_purchase(self) -> int:
        return len(self.service_visits)

    @property
    def main_stage(self) -> Stage:
        """The stage on the main path: the stage itself, or in a side state the stage held before it."""
        return self.stage if self.stage in RANK else (self.stage_before or Stage.ANONYMOUS)

    @property
    def owner(self) -> bool:
        """Bought something: service visits count, and a new purchase is a repurchase."""
        return self.purchased_at is not None or RANK[self.main_stage] >= RANK[Stage.CUSTOMER]


@dataclass(frozen=True)
class Transition:
    from_stage: Stage | None  # None: the person's first stage
    to_stage: Stage
    at: datetime
    cause: str  # the event id, outcome id, merge id, or "timer"
    cause_type: CauseType
    detail: str = ""  # the event type, the outcome, the lost reason or "no_activity_<days>d"
    stage_before: Stage | None = None  # for a side state: where the person was on the main path


# ---- signals -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Touch:
    """A touchpoint of the person. `reachable`: it carried a usable phone."""

    event_id: str
    event_type: EventType
    at: datetime
    reachable: bool = False
    product: str | None = None  # the cleaned product, recorded on a purchase
    referrer_one_id: str | None = None  # on referral_made


@dataclass(frozen=True)
class Progressed:
    """A consultant reported progress that puts the person at least at `to` (see outcomes.py)."""

    outcome_id: str
    outcome: str
    to: Stage
    at: datetime
    purchase: bool = False
    reachable: bool = False

    def __post_init__(self) -> None:
        if self.to not in RANK:
            raise LifecycleError(f"progress goes to a main-path stage, not {self.to}")


@dataclass(frozen=True)
class MarkedLost:
    """A consultant reported the person lost, with a reason from the policy's list."""

    outcome_id: str
    reason: str
    at: datetime

    def __post_init__(self) -> None:
        if not self.reason or not self.reason.strip():
            raise LifecycleError("entering lost needs a reason")


@dataclass(frozen=True)
class NotAnswered:
    outcome_id: str
    at: datetime


@dataclass(frozen=True)
class Tick:
    """The timer: checks dormancy as of `now`."""


@dataclass(frozen=True)
class Merged:
    """`other` (the merged-away person) joins this one."""

    merge_id: str
    other: LifecycleState
    at: datetime


@dataclass(frozen=True)
class ReferralCredited:
    """A person this one referred showed up (the referred person's referral_made touchpoint)."""

    event_id: str
    referred_one_id: str
    at: datetime


Signal = Touch | Progressed | MarkedLost | NotAnswered | Tick | Merged | ReferralCredited


# ---- the machine ---------------------------------------------------------------------------------


def advance(
    state: LifecycleState, signal: Signal, policy: LifecyclePolicy, now: datetime
) -> tuple[LifecycleState, Transition | None]:
    """The state after `signal`, and the stage transition it made (None: the stage stayed)."""
    match signal:
        case Touch():
            return _touch(state, signal, policy, now)
        case Progressed():
            return _progressed(state, signal, policy, now)
        case MarkedLost():
            return _lost(state, signal, policy, now)
        case NotAnswered():
            streak = state.no_answer_streak + 1
            return replace(state, no_answer_streak=streak, unreachable=streak >= policy.unreachable_after_no_answers), None
        case Tick():
            return _tick(state, policy, now)
        case Merged():
            return _merged(state, signal, policy, now)
        case ReferralCredited():
            return _referral(state, signal, now)
    raise TypeError(f"not a lifecycle signal: {signal!r}")


def credit_referral(
    referrer: LifecycleState, *, event_id: str, referred_one_id: str, at: datetime, policy: LifecyclePolicy, now: datetime
) -> tuple[LifecycleState, Transition | None]:
    """The referrer's state after a person they referred showed up: one more referral; a customer becomes loyal.

    The service does the linking: identity turns `referrer_phone` into `referrer_one_id` on the referred
    person's referral_made touchpoint; the leads handler applies that touchpoint to the referred person
    (who becomes `referred`, a lead if reachable) and then, once per touchpoint event id, applies this to
    the referrer's state, keyed and ordered by the referrer's one_id.
    """
    return advance(referrer, ReferralCredited(event_id, referred_one_id, at), policy, now)


def durations(transitions: Iterable[Transition], now: datetime) -> dict[Stage, timedelta]:
    """Time spent in each stage: from each transition to the next, the last until `now` (never negative)."""
    out: dict[Stage, timedelta] = {}
    items = list(transitions)
    for current, following in pairwise(items):
        out[current.to_stage] = out.get(current.to_stage, timedelta(0)) + max(following.at - current.at, timedelta(0))
    if items:
        last = items[-1]
        out[last.to_stage] = out.get(last.to_stage, timedelta(0)) + max(now - last.at, timedelta(0))
    return out


def time_in_stages(history: Iterable[Mapping[str, Any]], now: datetime) -> dict[Stage, timedelta]:
    """`durations` of stored stage changes (dicts with `to` and `at`, oldest first)."""
    return durations((Transition(None, Stage(h["to"]), h["at"], "", CauseType.TOUCHPOINT) for h in history), now)


def replay(
    signals: Sequence[Signal], policy: LifecyclePolicy, now: datetime, state: LifecycleState | None = None
) -> tuple[LifecycleState, list[Transition]]:
    """Apply `signals` in order (each at its own time, ticks at `now`): the state and every transition."""
    state = state or LifecycleState()
    transitions = []
    for signal in signals:
        state, transition = advance(state, signal, policy, now)
        if transition:
            transitions.append(transition)
    return state, transitions


# ---- one function per kind of signal -------------------------------------------------------------


def _when(state: LifecycleState, at: datetime, now: datetime) -> datetime:
    """The time of a stage change: at most now, at least the entry of the current stage (late signals)."""
    at = min(at, now)
    return max(at, state.entered_at) if state.entered_at else at


def _move(
    state: LifecycleState,
    target: Stage | None,
    *,
    active: bool,
    activity_at: datetime,
    at: datetime,
    cause: str,
    cause_type: CauseType,
    detail: str,
) -> tuple[LifecycleState, Transition | None]:
    """The main-path rules shared by touchpoints and outcomes: forward only, and returns from side states."""
    if state.entered_at is None:
        to = target or Stage.ANONYMOUS
        return _enter(state, to, None, at, Transition(None, to, at, cause, cause_type, detail))
    if state.stage in RANK:
        if target is not None and RANK[target] > RANK[state.stage]:
            return _enter(state, target, None, at, Transition(state.stage, target, at, cause, cause_type, detail))
        return state, None
    before = state.main_stage
    if state.stage is Stage.REACTIVATED:
        # Back on the main path where they were, or further.
        if target is not None and RANK[target] >= RANK[before]:
            return _enter(state, target, None, at, Transition(state.stage, target, at, cause, cause_type, detail, before))
        return state, None
    # Lost or dormant. Activity from before they were lost or went dormant is history, not a return.
    if not active or activity_at < state.entered_at:
        return state, None
    to = target if target is not None and RANK[target] > RANK[before] else Stage.REACTIVATED
    return _enter(state, to, before if to is Stage.REACTIVATED else None, at,
                  Transition(state.stage, to, at, cause, cause_type, detail, before))


def _enter(
    state: LifecycleState, stage: Stage, stage_before: Stage | None, at: datetime, transition: Transition
) -> tuple[LifecycleState, Transition]:
    lost_reason = state.lost_reason if stage is Stage.LOST else None
    return replace(state, stage=stage, stage_before=stage_before, entered_at=at, lost_reason=lost_reason), transition


def _purchase(state: LifecycleState, at: datetime, product: str | None, policy: LifecyclePolicy) -> tuple[LifecycleState, bool]:
    """Record a purchase; True if it is a repurchase (a new deal after an earlier purchase)."""
    last = state.purchased_at
    if last is not None and abs(at - last) < policy.same_purchase_within:
        # The same deal reported twice (touchpoint and consultant, or delivery after order).
        return replace(state, purchased_product=state.purchased_product or product), False
    if last is not None and at < last:
        return state, False  # an older purchase arriving late: the latest one stands
    repeat = last is not None
    return replace(
        state,
        purchased_at=at,
        purchased_product=product or state.purchased_product,
        service_visits=(),
        repurchases=state.repurchases + (1 if repeat else 0),
    ), repeat


def _touch(state: LifecycleState, sig: Touch, policy: LifecyclePolicy, now: datetime) -> tuple[LifecycleState, Transition | None]:
    et = sig.event_type
    activity_at = min(sig.at, now)
    active = et not in PASSIVE_EVENTS
    was_owner = state.owner
    updated = replace(
        state,
        reachable=state.reachable or sig.reachable,
        unsubscribed=state.unsubscribed or et is EventType.UNSUBSCRIBED,
        referred=state.referred or et is EventType.REFERRAL_MADE,
        referrer_one_id=state.referrer_one_id or (sig.referrer_one_id if et is EventType.REFERRAL_MADE else None),
        last_activity_at=max(filter(None, (state.last_activity_at, activity_at))) if active else state.last_activity_at,
    )
    target = TOUCH_TARGET.get(et)
    if target in (Stage.CONTACT, Stage.LEAD):
        target = Stage.LEAD if updated.reachable else Stage.CONTACT
    if et is EventType.PURCHASE_COMPLETED:
        updated, repeat = _purchase(updated, activity_at, sig.product, policy)
        if repeat:
            target = Stage.LOYAL
    elif et is EventType.SERVICE_VISITED and was_owner:
        visits = tuple(sorted((*updated.service_visits, activity_at)))[-policy.service_visits_kept:]
        updated = replace(updated, service_visits=visits)
        if len(visits) >= policy.loyal_after_service_visits:
            target = Stage.LOYAL
    return _move(updated, target, active=active, activity_at=activity_at, at=_when(state, sig.at, now),
                 cause=sig.event_id, cause_type=CauseType.TOUCHPOINT, detail=str(et))


def _progressed(
    state: LifecycleState, sig: Progressed, policy: LifecyclePolicy, now: datetime
) -> tuple[LifecycleState, Transition | None]:
    activity_at = min(sig.at, now)
    updated = replace(
        state,
        reachable=state.reachable or sig.reachable,
        no_answer_streak=0,
        unreachable=False,
        last_activity_at=max(filter(None, (state.last_activity_at, activity_at))),
    )
    target = sig.to
    if target in (Stage.CONTACT, Stage.LEAD):
        target = Stage.LEAD if updated.reachable else Stage.CONTACT
    if sig.purchase:
        updated, repeat = _purchase(updated, activity_at, None, policy)
        if repeat:
            target = Stage.LOYAL
    return _move(updated, target, active=True, activity_at=activity_at, at=_when(state, sig.at, now),
                 cause=sig.outcome_id, cause_type=CauseType.OUTCOME, detail=sig.outcome)


def _lost(state: LifecycleState, sig: MarkedLost, policy: LifecyclePolicy, now: datetime) -> tuple[LifecycleState, Transition | None]:
    if sig.reason not in policy.lost_reasons:
        raise LifecycleError(f"lost reason {sig.reason!r} is not one of {', '.join(policy.lost_reasons)}")
    if state.stage is Stage.LOST:
        return replace(state, lost_reason=sig.reason), None  # a newer reason for the same loss
    at = _when(state, sig.at, now)
    before = state.main_stage
    from_stage = state.stage if state.entered_at is not None else None
    return (
        replace(state, stage=Stage.LOST, stage_before=before, entered_at=at, lost_reason=sig.reason),
        Transition(from_stage, Stage.LOST, at, sig.outcome_id, CauseType.OUTCOME, sig.reason, before),
    )


def _tick(state: LifecycleState, policy: LifecyclePolicy, now: datetime) -> tuple[LifecycleState, Transition | None]:
    if state.entered_at is None or state.stage in (Stage.LOST, Stage.DORMANT):
        return state, None
    after = policy.dormant_after.get(state.main_stage)
    if after is None:
        return state, None
    # The clock starts at the later of the last activity and entering the stage (a merge or a referral
    # may move a person without their doing anything).
    since = max(filter(None, (state.last_activity_at, state.entered_at)))
    if now - since < after:
        return state, None
    at = since + after
    before = state.main_stage
    return (
        replace(state, stage=Stage.DORMANT, stage_before=before, entered_at=at),
        Transition(state.stage, Stage.DORMANT, at, TIMER_CAUSE, CauseType.TIMER, f"no_activity_{after.days}d", before),
    )


def _merged(state: LifecycleState, sig: Merged, policy: LifecyclePolicy, now: datetime) -> tuple[LifecycleState, Transition | None]:
    a, b = state, sig.other
    if b.entered_at is None:
        facts_only = _merge_facts(a, b, policy)
        return replace(facts_only, stage=a.stage, stage_before=a.stage_before, entered_at=a.entered_at,
                       lost_reason=a.lost_reason), None
    if a.entered_at is None or RANK[b.main_stage] > RANK[a.main_stage]:
        main = b.main_stage
    else:
        main = a.main_stage
    if a.entered_at is None:
        newer = b
    else:
        # The person is where their latest activity put them; the winner on a tie.
        newer = b if (b.last_activity_at or b.entered_at) > (a.last_activity_at or a.entered_at) else a
    if newer.stage in RANK:
        stage, before = main, None
    else:
        stage, before = newer.stage, main
    merged = _merge_facts(a, b, policy)
    lost_reason = newer.lost_reason if stage is Stage.LOST else None
    if a.entered_at is not None and stage is a.stage:
        # The same stage; in a side state the other person may have been further along before it.
        return replace(merged, stage=stage, stage_before=before, entered_at=a.entered_at, lost_reason=lost_reason), None
    at = _when(a, sig.at, now)
    return (
        replace(merged, stage=stage, stage_before=before, entered_at=at, lost_reason=lost_reason),
        Transition(a.stage if a.entered_at is not None else None, stage, at, sig.merge_id, CauseType.MERGE, "merged", before),
    )


def _merge_facts(a: LifecycleState, b: LifecycleState, policy: LifecyclePolicy) -> LifecycleState:
    latest = b if (b.purchased_at and (a.purchased_at is None or b.purchased_at > a.purchased_at)) else a
    streak = min(a.no_answer_streak, b.no_answer_streak)
    return replace(
        a,
        last_activity_at=max(filter(None, (a.last_activity_at, b.last_activity_at)), default=None),
        reachable=a.reachable or b.reachable,
        purchased_at=latest.purchased_at,
        purchased_product=latest.purchased_product,
        service_visits=tuple(sorted(set(latest.service_visits) | {
            v for v in a.service_visits + b.service_visits if latest.purchased_at is None or v >= latest.purchased_at
        }))[-policy.service_visits_kept:],
        repurchases=a.repurchases + b.repurchases,
        referrals=a.referrals + b.referrals,
        referred=a.referred or b.referred,
        referrer_one_id=a.referrer_one_id or b.referrer_one_id,
        unsubscribed=a.unsubscribed or b.unsubscribed,  # consent withdrawn by either stays withdrawn
        no_answer_streak=streak,
        unreachable=streak >= policy.unreachable_after_no_answers,
    )


def _referral(state: LifecycleState, sig: ReferralCredited, now: datetime) -> tuple[LifecycleState, Transition | None]:
    updated = replace(state, referrals=state.referrals + 1)
    if state.stage is not Stage.CUSTOMER:
        return updated, None
    at = _when(state, sig.at, now)
    return (
        replace(updated, stage=Stage.LOYAL, entered_at=at),
        Transition(Stage.CUSTOMER, Stage.LOYAL, at, sig.event_id, CauseType.REFERRAL, "referral_credited"),
    )
