"""What a consultant's outcome means for the lifecycle: a signal for `stages.advance`, effects the service
carries out elsewhere, and problem codes. Pure: no I/O, no clock.

| outcome | signal | effect |
|---|---|---|
| contacted | Progressed(to lead, reachable): keeps or moves to lead; resets the no-answer streak | |
| no_answer | NotAnswered: no stage change; N in a row set `unreachable` | |
| invalid_number | none | MarkPhoneBad per dialled phone link, tenant-wide |
| appointment_set, visited | Progressed(to opportunity) | |
| ordered | Progressed(to customer) | |
| won | Progressed(to customer, purchase): sets purchased_at | |
| lost | MarkedLost(reason): the reason normalised to the policy's list, unknown → "other" | |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from schemas.leads import Stage
from schemas.tasks import Outcome, TaskOutcomeRecorded
from services.leads.domain.stages import (
    OTHER_REASON,
    LifecyclePolicy,
    MarkedLost,
    NotAnswered,
    Progressed,
    Signal,
)

# Stage an outcome puts the person at (at least), and whether it is a purchase.
PROGRESS: Mapping[Outcome, tuple[Stage, bool]] = {
    Outcome.CONTACTED: (Stage.LEAD, False),
    Outcome.APPOINTMENT_SET: (Stage.OPPORTUNITY, False),
    Outcome.VISITED: (Stage.OPPORTUNITY, False),
    Outcome.ORDERED: (Stage.CUSTOMER, False),
    Outcome.WON: (Stage.CUSTOMER, True),
}
# Outcomes handled case by case: every Outcome is in exactly one of PROGRESS and these.
SPECIAL = frozenset({Outcome.NO_ANSWER, Outcome.INVALID_NUMBER, Outcome.LOST})

# What consultants type, to the policy's reason codes. Matched after stripping and lower-casing.
DEFAULT_REASON_ALIASES: Mapping[str, str] = {
    "价格": "price", "价格高": "price", "价格太高": "price", "太贵": "price", "嫌贵": "price", "too_expensive": "price",
    "已购别家": "bought_elsewhere", "买了别家": "bought_elsewhere", "别家购买": "bought_elsewhere", "已购车": "bought_elsewhere",
    "已购买其他品牌": "bought_elsewhere", "competitor": "bought_elsewhere",
    "没预算": "no_budget", "预算不足": "no_budget", "无预算": "no_budget", "budget": "no_budget",
    "联系不上": "unreachable", "无法联系": "unreachable", "失联": "unreachable",
    "没兴趣": "not_interested", "不感兴趣": "not_interested", "无意向": "not_interested", "暂不考虑": "not_interested",
    "其他": "other", "其它": "other",
}

# Problem codes.
LOST_REASON_MISSING = "lost_reason_missing"
LOST_REASON_UNKNOWN = "lost_reason_unknown"
NO_PHONE_TO_MARK = "invalid_number_without_phone"


@dataclass(frozen=True)
class MarkPhoneBad:
    """Intent: the service marks this phone link bad for the whole tenant (no task dials it again)."""

    link_id: str
    one_id: str
    cause: str  # the outcome id


Effect = MarkPhoneBad


@dataclass(frozen=True)
class OutcomeMapping:
    signal: Signal | None  # None: the lifecycle does not change
    effects: tuple[Effect, ...] = ()
    problems: tuple[str, ...] = ()


def normalise_reason(
    raw: str | None, policy: LifecyclePolicy, aliases: Mapping[str, str] = DEFAULT_REASON_ALIASES
) -> tuple[str, str | None]:
    """The lost reason as one of the policy's codes, and the problem code if it had to become "other"."""
    text = (raw or "").strip()
    if not text:
        return OTHER_REASON, LOST_REASON_MISSING
    if text in policy.lost_reasons:
        return text, None
    key = text.lower()
    if key in policy.lost_reasons:
        return key, None
    code = aliases.get(text) or aliases.get(key)
    if code in policy.lost_reasons:
        return code, None
    return OTHER_REASON, LOST_REASON_UNKNOWN


def map_outcome(
    outcome: Outcome,
    *,
    outcome_id: str,
    one_id: str,
    at: datetime,
    reason: str | None,
    policy: LifecyclePolicy,
    phone_link_ids: Iterable[str] = (),
    aliases: Mapping[str, str] = DEFAULT_REASON_ALIASES,
) -> OutcomeMapping:
    """The lifecycle signal, effects and problems of one consultant outcome.

    `phone_link_ids`: the link ids of the phone(s) the consultant dialled; the service knows them from
    the lead's identifiers. Only invalid_number uses them.
    """
    if outcome in PROGRESS:
        to, purchase = PROGRESS[outcome]
        return OutcomeMapping(Progressed(outcome_id, str(outcome), to, at, purchase=purchase,
                                         reachable=outcome is Outcome.CONTACTED))
    if outcome is Outcome.NO_ANSWER:
        return OutcomeMapping(NotAnswered(outcome_id, at))
    if outcome is Outcome.INVALID_NUMBER:
        links = tuple(dict.fromkeys(phone_link_ids))
        return OutcomeMapping(
            None,
            tuple(MarkPhoneBad(link, one_id, outcome_id) for link in links),
            () if links else (NO_PHONE_TO_MARK,),
        )
    if outcome is Outcome.LOST:
        code, problem = normalise_reason(reason, policy, aliases)
        return OutcomeMapping(MarkedLost(outcome_id, code, at), (), (problem,) if problem else ())
    raise ValueError(f"no lifecycle mapping for outcome {outcome!r}")


def map_recorded(
    event: TaskOutcomeRecorded, policy: LifecyclePolicy, *, phone_link_ids: Iterable[str] = ()
) -> OutcomeMapping:
    """`map_outcome` of a `tasks.outcomes` record."""
    return map_outcome(
        event.outcome,
        outcome_id=event.outcome_id,
        one_id=event.one_id,
        at=event.recorded_at,
        reason=event.reason,
        policy=policy,
        phone_link_ids=phone_link_ids,
    )
