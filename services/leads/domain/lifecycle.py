"""The lifecycle stage a touchpoint moves a person to. Stages only move forward on the main path."""

from __future__ import annotations

from schemas.leads import Stage
from schemas.touchpoints import EventType

MAIN_PATH = (
    Stage.ANONYMOUS,
    Stage.FOLLOWER,
    Stage.CONTACT,
    Stage.LEAD,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
    Stage.LOYAL,
)
_RANK = {stage: rank for rank, stage in enumerate(MAIN_PATH)}

STAGE_OF_EVENT: dict[EventType, Stage] = {
    EventType.WECHAT_FOLLOWED: Stage.FOLLOWER,
    EventType.CONTENT_ENGAGED: Stage.FOLLOWER,
    EventType.WECOM_CONTACT_ADDED: Stage.CONTACT,
    EventType.FORM_SUBMITTED: Stage.LEAD,
    EventType.CALL_LOGGED: Stage.LEAD,
    EventType.CHAT_MESSAGE: Stage.CONTACT,
    EventType.PRICE_INQUIRED: Stage.OPPORTUNITY,
    EventType.TEST_DRIVE_BOOKED: Stage.OPPORTUNITY,
    EventType.STORE_VISITED: Stage.OPPORTUNITY,
    EventType.QUOTE_REQUESTED: Stage.OPPORTUNITY,
    EventType.DEPOSIT_PAID: Stage.CUSTOMER,
    EventType.ORDER_PLACED: Stage.CUSTOMER,
    EventType.PURCHASE_COMPLETED: Stage.CUSTOMER,
}
# Signals of loyalty only count for people who already bought.
LOYALTY_EVENTS = frozenset({EventType.SERVICE_VISITED, EventType.REFERRAL_MADE})


def next_stage(current: Stage, event_type: EventType, reachable: bool) -> Stage:
    target = STAGE_OF_EVENT.get(event_type, current)
    if event_type in LOYALTY_EVENTS and current in (Stage.CUSTOMER, Stage.LOYAL):
        target = Stage.LOYAL
    if target is Stage.LEAD and not reachable:
        target = Stage.CONTACT  # a lead is a person a consultant can actually reach
    if current not in _RANK:
        return target if target in _RANK else current
    return target if _RANK.get(target, -1) > _RANK[current] else current


def further(current: Stage, other: Stage) -> Stage:
    """The stage further along the main path; off it (lost, dormant, reactivated) `current` stands."""
    if current in _RANK and other in _RANK and _RANK[other] > _RANK[current]:
        return other
    return current
