"""Delivering task notifications ("pushes"): what a push is, its deterministic id, the retry policy that
turns one attempt's result into the next delivery status, the Chinese message a consultant reads, and the
signature a webhook receiver checks. Pure: the clock and the jitter's random number are passed in.

Channels (WeCom, webhook, e-mail, in-app inbox) live in `adapters/channels.py`; they only send once and
say how it went (`Result`). Whether and when to try again is decided here, so every channel retries alike.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta, tzinfo
from enum import StrEnum
from types import MappingProxyType
from typing import Any

_PUSH_NS = uuid.UUID("6f1d2c4e-8b3a-4f5e-9c7d-2a1b0e3f4d5c")

CHANNELS = frozenset({"wecom", "webhook", "email", "inbox"})
SIGNATURE_HEADER = "X-Leadflow-Signature"
PUSH_ID_HEADER = "X-Leadflow-Push-Id"


class DeliveryError(ValueError):
    """A push or a retry policy that cannot be used; the message names the field."""


def push_id(tenant_id: str, task_id: str, task_version: int, channel: str, audience: str = "") -> str:
    """The id of a task version's push on one channel (to one `audience`, e.g. each manager told of a
    breach): the same inputs give the same id, so a task version is pushed at most once per channel and
    person (a replayed event finds the push already there)."""
    key = f"{tenant_id}\x1f{task_id}\x1f{task_version}\x1f{channel}" + (f"\x1f{audience}" if audience else "")
    return str(uuid.uuid5(_PUSH_NS, key))


@dataclass(frozen=True)
class Push:
    """One notification of one task version to one recipient on one channel.

    `recipient` is a WeCom userid, an e-mail address, a webhook URL or a consultant id, by channel. It,
    the body and the payload stay out of `repr`, so a push that ends up in a log carries no personal data.
    """

    push_id: str
    tenant_id: str
    task_id: str
    task_version: int
    channel: str
    recipient: str = field(repr=False)
    title: str
    body: str = field(repr=False)
    url: str | None = field(default=None, repr=False)
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the webhook's JSON body

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise DeliveryError(f"channel: one of {', '.join(sorted(CHANNELS))}")
        if not self.recipient:
            raise DeliveryError("recipient: not empty")
        # Frozen all the way down: a payload changed after the push was built would be sent unsigned-for.
        object.__setattr__(self, "payload", MappingProxyType(dict(self.payload)))

    @classmethod
    def of(cls, *, tenant_id: str, task_id: str, task_version: int, channel: str, recipient: str, title: str,
           body: str, url: str | None = None, payload: Mapping[str, Any] | None = None, audience: str = "") -> Push:
        """A push with its deterministic id."""
        return cls(push_id(tenant_id, task_id, task_version, channel, audience), tenant_id, task_id, task_version,
                   channel, recipient, title, body, url, payload or {})


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not tried yet
    SENT = "sent"
    RETRYING = "retrying"  # failed for now; tried again at `next_attempt_at`
    FAILED = "failed"  # gave up: a permanent error, or out of attempts


@dataclass(frozen=True)
class Result:
    """How one attempt went. `retryable`: the error is transient (a busy server, a network fault), so the
    same push may succeed later; a permanent one (a bad address, a rejected token) never will. `detail`
    is for operators: codes and server messages, never the recipient or the message text."""

    ok: bool
    retryable: bool
    detail: str = ""

    @classmethod
    def sent(cls, detail: str = "") -> Result:
        return cls(True, False, detail)

    @classmethod
    def retry(cls, detail: str) -> Result:
        return cls(False, True, detail)

    @classmethod
    def fail(cls, detail: str) -> Result:
        return cls(False, False, detail)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter: `base_s × factor^(attempt-1)`, at most `max_backoff_s`, spread by
    ±`jitter` so pushes that failed together (a WeCom outage) do not all come back in the same second."""

    max_attempts: int = 6
    base_s: float = 1.0
    factor: float = 2.0
    max_backoff_s: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "max_attempts": (isinstance(self.max_attempts, int) and self.max_attempts >= 1, "a whole number, at least 1"),
            "base_s": (0 < self.base_s < math.inf, "a finite number above 0"),
            "factor": (1 <= self.factor < math.inf, "a finite number, at least 1"),
            "max_backoff_s": (self.base_s <= self.max_backoff_s < math.inf, "a finite number, at least base_s"),
            "jitter": (0 <= self.jitter < 1, "at least 0 and below 1"),
        }
        bad = [f"{name}: {need}" for name, (ok, need) in checks.items() if not ok]  # NaN fails every check
        if bad:
            raise DeliveryError("; ".join(bad))

    def backoff(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first); `rand` in [0, 1)."""
        if attempt < 1:
            raise DeliveryError("attempt: at least 1")
        if not 0 <= rand < 1:
            raise DeliveryError("rand: in [0, 1)")
        try:
            raw = self.base_s * self.factor ** (attempt - 1)
        except OverflowError:  # attempt in the thousands: far past the cap anyway
            raw = math.inf
        spread = min(raw, self.max_backoff_s) * (1 + self.jitter * (2 * rand - 1))
        # Capped after the jitter too: max_backoff_s is a promise to the consultant waiting for the push.
        return min(spread, self.max_backoff_s)

    def next_state(self, attempt: int, error: str | None, retryable: bool, now: datetime,
                   rand: float = 0.5) -> tuple[DeliveryStatus, datetime | None]:
        """The status after attempt number `attempt` (`error` None: it succeeded), and when to try again."""
        if error is None:
            return DeliveryStatus.SENT, None
        if not retryable or attempt >= self.max_attempts:
            return DeliveryStatus.FAILED, None
        return DeliveryStatus.RETRYING, now + timedelta(seconds=self.backoff(attempt, rand))


@dataclass(frozen=True)
class Delivery:
    """Where a push's delivery stands: the record a worker keeps per push_id."""

    push_id: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_detail: str = ""

    def after(self, result: Result, policy: RetryPolicy, now: datetime, rand: float = 0.5) -> Delivery:
        """The delivery after one more attempt that went as `result`. A finished one does not change."""
        if self.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
            return self
        attempts = self.attempts + 1
        status, at = policy.next_state(attempts, None if result.ok else (result.detail or "failed"),
                                       result.retryable, now, rand)
        return replace(self, status=status, attempts=attempts, next_attempt_at=at, last_detail=result.detail)

    def due(self, now: datetime) -> bool:
        """Whether a worker should try this push now."""
        if self.status is DeliveryStatus.PENDING:
            return True
        return self.status is DeliveryStatus.RETRYING and self.next_attempt_at is not None and self.next_attempt_at <= now


# ---- the message -------------------------------------------------------------------------------------

# Task reasons (tasks.py's values) as a consultant reads them, and what they are asked to do.
_REASONS: dict[str, tuple[str, str]] = {
    "new_valid_lead": ("新线索", "首次联系"),
    "new_unverified_lead": ("新线索（待核实）", "首次联系"),
    "grade_rose": ("意向升级", "跟进"),
    "high_intent": ("高意向", "跟进"),
    "reactivated": ("老客户回访", "跟进"),
    "replacement_candidate_active": ("置换意向", "跟进"),
    "verify_suspect_lead": ("待核实线索", "核实"),
    "store_collision": ("撞单待处理", "处理"),
    "repurchase_due": ("复购提醒", "联系"),
}
_DEFAULT_REASON = ("跟进任务", "跟进")

# Seven digits or more, with the single separators people type into phone numbers: never shown. Shorter
# runs stay, so model years and names like "ES8 2024款" read as they are.
_NUMBERISH = re.compile(r"\+?\d(?:[\s\-().]?\d){6,}")
_EMAIL = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"'@,;:]+")


def redact(text: str) -> str:
    """`text` with e-mail addresses and phone-like digit runs blanked, for details that may be logged."""
    return _NUMBERISH.sub("***", _EMAIL.sub("<redacted>", text))


def mask_name(name: str | None) -> str:
    """A customer's name as a push shows it: its first character and `**` (the length is not told either).
    A name that does not start with a letter (a number typed in the name field) shows as 客户."""
    name = (name or "").strip()
    if not name or not name[0].isalpha():
        return "客户"
    return f"{name[0]}**"


def clip_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 on a character boundary, with … when cut (WeCom counts bytes)."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    ellipsis = "…".encode()
    return data[: max(0, max_bytes - len(ellipsis))].decode(errors="ignore") + "…"


@dataclass(frozen=True)
class Message:
    title: str
    body: str


def render_task_message(*, reason: str, grade: str, name: str | None, vehicle: str | None, due_at: datetime,
                        now: datetime, tz: tzinfo, score: float | None = None, store: str | None = None) -> Message:
    """The Chinese title and body for a new task, e.g. 新线索（H级）：李** · Model Y，请在 09:10 前首次联系.
    The name is masked and digit runs are scrubbed from every free-text field, so a phone number typed
    into the name or vehicle field never reaches a lock screen. Times are the tenant's local ones (`tz`);
    a deadline on another day than `now` names its date."""
    label, action = _REASONS.get(reason, _DEFAULT_REASON)
    who = mask_name(name)
    car = redact(vehicle.strip()) if vehicle and vehicle.strip() else None
    due = (due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)).astimezone(tz)
    today = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(tz).date()
    when = f"{due:%H:%M}" if due.date() == today else f"{due.month}月{due.day}日 {due:%H:%M}"
    title = f"{label}（{grade}级）：{who}{f' · {car}' if car else ''}，请在 {when} 前{action}"
    lines = [f"客户：{who}", f"等级：{grade}级" + (f"（评分 {score:.0f}）" if score is not None else "")]
    if car:
        lines.append(f"意向车型：{car}")
    if store:
        lines.append(f"门店：{redact(store)}")
    lines.append(f"原因：{label}")
    lines.append(f"截止时间：{due.month}月{due.day}日 {due:%H:%M}")
    lines.append("请打开任务查看联系方式并记录跟进结果。")
    return Message(title, "\n".join(lines))


# ---- webhook signatures --------------------------------------------------------------------------------

def webhook_signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 (hex) over `"<timestamp>." + body`: the timestamp is signed, so a captured request
    cannot be replayed later with a fresh one."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `X-Leadflow-Signature` value: `t=<timestamp>,v1=<hex>`."""
    return f"t={timestamp},v1={webhook_signature(secret, timestamp, body)}"


def verify_signature(secret: bytes, header: str, body: bytes, now_ts: int, tolerance_s: int = 300) -> bool:
    """Whether `header` signs `body` with `secret` within `tolerance_s` of `now_ts` (either way: clocks
    differ). Several `v1=` are allowed, as while a receiver rotates secrets; a malformed header is False."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if not value.isdigit():
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or abs(now_ts - timestamp) > tolerance_s:
        return False
    expected = webhook_signature(secret, timestamp, body)
    # compare_digest on every candidate, so timing tells nothing about which one came close.
    return any([hmac.compare_digest(expected, c) for c in candidates])


# ---- quiet hours ---------------------------------------------------------------------------------------

def parse_quiet_hours(text: str) -> tuple[time, time]:
    """`"22:00-08:00"` -> (22:00, 08:00): the local hours in which nobody is woken by a push."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise DeliveryError(f"quiet_hours: HH:MM-HH:MM, not {text!r}") from None
    if start == end:
        raise DeliveryError("quiet_hours: start and end differ")
    return start, end


def quiet_until(now: datetime, window: tuple[time, time] | None, tz: tzinfo) -> datetime | None:
    """When the quiet hours around `now` end (aware, in UTC), or None when `now` is not in them."""
    if window is None:
        return None
    local = now.astimezone(tz)
    start, end = window
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)
