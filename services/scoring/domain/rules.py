"""Scoring rules: a weight, a half-life and a cap per signal, and grade thresholds.

The defaults are for car dealers; issue #5 moves them to per-tenant YAML files.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.touchpoints import EventType


@dataclass(frozen=True)
class SignalRule:
    label: str  # what a consultant reads in the explanation
    weight: float  # points for one fresh occurrence
    half_life_days: float
    cap: float  # the most this signal can add, however often it repeats


@dataclass(frozen=True)
class RuleSet:
    signals: dict[EventType, SignalRule]
    grade_thresholds: tuple[tuple[str, float], ...] = (("H", 75.0), ("A", 50.0), ("B", 25.0))
    min_score_delta: float = 1.0  # smaller moves are not worth a change event
    suspect_factor: float = 0.5
    name: str = "car-dealer-default"
    version: int = 1


CAR_DEALER = RuleSet(
    signals={
        EventType.PAGE_VIEWED: SignalRule("浏览页面", 2, 3, 8),
        EventType.CONTENT_ENGAGED: SignalRule("内容互动", 3, 5, 9),
        EventType.WECHAT_FOLLOWED: SignalRule("关注公众号", 5, 30, 5),
        EventType.WECHAT_UNFOLLOWED: SignalRule("取消关注", -10, 30, -10),
        EventType.WECOM_CONTACT_ADDED: SignalRule("添加企业微信", 10, 30, 10),
        EventType.CHAT_MESSAGE: SignalRule("在线咨询", 6, 7, 18),
        EventType.FORM_SUBMITTED: SignalRule("留资", 30, 14, 40),
        EventType.CALL_LOGGED: SignalRule("电话沟通", 8, 7, 16),
        EventType.PRICE_INQUIRED: SignalRule("价格咨询", 12, 7, 30),
        EventType.QUOTE_REQUESTED: SignalRule("索取报价", 18, 7, 30),
        EventType.TEST_DRIVE_BOOKED: SignalRule("试驾预约", 25, 10, 35),
        EventType.STORE_VISITED: SignalRule("到店", 25, 14, 40),
        EventType.DEPOSIT_PAID: SignalRule("支付定金", 40, 30, 40),
        EventType.UNSUBSCRIBED: SignalRule("退订", -30, 60, -30),
        EventType.COMPLAINT_FILED: SignalRule("投诉", -15, 30, -30),
    }
)
