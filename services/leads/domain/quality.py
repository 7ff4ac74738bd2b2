"""The quality verdict of one touchpoint: valid, suspect or junk, with machine-readable reasons. Pure.

The inputs the service looks up (windowed counts of the device's and IP's form submissions, phones
consultants reported invalid) are passed in, so this module decides and never counts.
Junk never reaches a consultant; suspect goes to verification or sales by `route_of`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS

from schemas.identity import LinkedIdentifier, RejectedIdentifier
from schemas.leads import Route, Verdict
from schemas.touchpoints import EventType, IdentifierType

# Whole words or "<name>bot/<version>": a phone model such as "CUBOT KingKong" is not a bot.
BOT_USER_AGENT = re.compile(
    r"\b(?:bot|spider|crawler)\b|\w+bot/|\w+spider|curl/|wget/|python-requests|httpclient|okhttp|headless|scrapy"
    r"|go-http-client|java/\d|libwww|aiohttp",
    re.I,
)
# Where a person types into a page: the browser checks apply. Calls and chats have no user agent.
FORM_EVENTS = frozenset({EventType.FORM_SUBMITTED})
JUNK_PHONE_PROBLEMS = frozenset({"invalid_phone", "test_number"})
RISKY_PHONE_PROBLEMS = frozenset({"virtual_operator", "sequential_digits", "repeated_digits", "foreign_phone"})
# Identity held an identifier back because a guardrail (not the value itself) said so.
CONFLICT_PREFIXES = ("limit:", "exclusive:", "weak_link:", "merge_size_cap", "quarantined")

REASONS: Mapping[str, str] = {
    "invalid_phone": "the only phone is not a valid number under the Chinese number plan",
    "test_number": "the only phone is a known test number",
    "phone_marked_invalid": "a consultant reported this phone as an invalid number",
    "device_velocity": "one device filled more forms than the tenant allows within the window",
    "ip_velocity": "one IP address filled more forms than the tenant allows within the window",
    "missing_user_agent": "a form arrived without a browser user agent",
    "bot_user_agent": "the user agent is a script or crawler",
    "form_too_fast": "the form was filled faster than a person can",
    "disposable_email": "the e-mail address is at a throw-away mailbox domain",
    "virtual_operator": "the phone is in a virtual-operator range (170/171/162/165/167)",
    "sequential_digits": "the phone ends in a run of sequential digits",
    "repeated_digits": "the phone is mostly one repeated digit",
    "foreign_phone": "the phone is not a Chinese number",
    "identity_conflict": "identity held back an identifier of this touchpoint because a guardrail was hit",
}
JUNK_REASONS = frozenset({"invalid_phone", "test_number", "phone_marked_invalid", "device_velocity", "ip_velocity"})


class QualityPolicyError(ValueError):
    """A quality policy that cannot be used; the message names the key."""


@dataclass(frozen=True)
class QualityPolicy:
    min_human_fill_seconds: float = 3.0
    velocity_window: timedelta = timedelta(hours=1)
    max_forms_per_device: int = 3  # more form submissions than this from one device in the window: brushing
    max_forms_per_ip: int = 5  # the same for one IP address (offices and mobile NAT share addresses)
    suspect_to_verification: bool = True  # suspect leads go to a verification queue instead of sales
    extra_disposable_domains: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()  # never disposable for this tenant
    risk_is_suspect: bool = True  # risky phones make a touchpoint suspect (else they only count as problems)

    def __post_init__(self) -> None:
        # Domains compare lower-case without a trailing dot, however the policy was built.
        for name in ("extra_disposable_domains", "allowed_domains"):
            object.__setattr__(self, name, frozenset(_domain(d) for d in getattr(self, name)) - {""})
        if not 0 <= self.min_human_fill_seconds <= 600:
            raise QualityPolicyError("min_human_fill_seconds: between 0 and 600")
        if self.velocity_window <= timedelta(0) or self.velocity_window > timedelta(days=7):
            raise QualityPolicyError("velocity_window_minutes: between 1 minute and 7 days")
        if self.max_forms_per_device < 1 or self.max_forms_per_ip < 1:
            raise QualityPolicyError("max_forms_per_device and max_forms_per_ip: at least 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> QualityPolicy:
        """From TOML: the fields by name, `velocity_window_minutes` for the window, lists for the domains."""
        known = {f.name for f in fields(cls)} - {"velocity_window"} | {"velocity_window_minutes"}
        unknown = set(data) - known
        if unknown:
            raise QualityPolicyError(f"unknown quality keys: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        try:
            for key, value in data.items():
                if key == "velocity_window_minutes":
                    kwargs["velocity_window"] = timedelta(minutes=_number(value, key))
                elif key in ("extra_disposable_domains", "allowed_domains"):
                    if not isinstance(value, list | tuple | set | frozenset) or not all(isinstance(d, str) for d in value):
                        raise QualityPolicyError(f"{key}: a list of domains")
                    kwargs[key] = frozenset(value)
                elif key in ("suspect_to_verification", "risk_is_suspect"):
                    if not isinstance(value, bool):
                        raise QualityPolicyError(f"{key}: true or false")
                    kwargs[key] = value
                elif key == "min_human_fill_seconds":
                    kwargs[key] = _number(value, key)
                else:
                    if not isinstance(value, int) or isinstance(value, bool):
                        raise QualityPolicyError(f"{key}: a whole number")
                    kwargs[key] = value
        except TypeError:
            raise QualityPolicyError("quality: malformed value") from None
        return cls(**kwargs)


def _number(value: Any, key: str) -> float:
    # Bounded here, not only in __post_init__: timedelta() fails on NaN and overflows on huge minutes.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > 1e7:
        raise QualityPolicyError(f"{key}: a finite number")
    return float(value)


def _domain(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


def _suffixes(domain: str) -> set[str]:
    """The domain and every parent domain with at least two labels: a.b.example.com → b.example.com, …."""
    parts = domain.split(".")
    return {".".join(parts[i:]) for i in range(len(parts) - 1)}


@dataclass(frozen=True)
class QualityInput:
    event_type: EventType
    user_agent: str | None
    fill_seconds: float | None
    problems: tuple[str, ...] = ()  # Cleaned.problems of this touchpoint
    identifiers: tuple[LinkedIdentifier, ...] = ()
    rejected: tuple[RejectedIdentifier, ...] = ()
    device_forms: int = 0  # form submissions from this touchpoint's device(s) within the window, this one included
    ip_forms: int = 0  # the same for its IP address
    bad_phone_link_ids: frozenset[str] = frozenset()  # phones consultants reported invalid (tenant-wide)


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    reasons: tuple[str, ...]  # sorted, unique; () for a clean valid touchpoint


def is_disposable(domain: str, policy: QualityPolicy) -> bool:
    """A throw-away mailbox domain (or a subdomain of one), unless the tenant allows it (or a parent of it)."""
    candidates = _suffixes(_domain(domain))
    if not candidates or candidates & policy.allowed_domains:
        return False
    # Two lookups, never a union: the blocklist has ~10,000 names and this runs for every e-mail.
    return not candidates.isdisjoint(DISPOSABLE_DOMAINS) or not candidates.isdisjoint(policy.extra_disposable_domains)


def assess(q: QualityInput, policy: QualityPolicy = QualityPolicy()) -> Assessment:
    phones = [i for i in q.identifiers if i.type is IdentifierType.PHONE]
    usable = [p for p in phones if p.link_id not in q.bad_phone_link_ids]
    junk: set[str] = set()
    if not usable:
        junk |= JUNK_PHONE_PROBLEMS & set(q.problems)
        if phones:
            junk.add("phone_marked_invalid")
    if q.device_forms > policy.max_forms_per_device:
        junk.add("device_velocity")
    if q.ip_forms > policy.max_forms_per_ip:
        junk.add("ip_velocity")
    if junk:
        return Assessment(Verdict.JUNK, tuple(sorted(junk)))

    suspect: set[str] = set()
    if q.event_type in FORM_EVENTS:
        if not q.user_agent or not q.user_agent.strip():
            suspect.add("missing_user_agent")
        elif BOT_USER_AGENT.search(q.user_agent):
            suspect.add("bot_user_agent")
        if q.fill_seconds is not None and q.fill_seconds < policy.min_human_fill_seconds:
            suspect.add("form_too_fast")
    for email in (i for i in q.identifiers if i.type is IdentifierType.EMAIL):
        if "@" in email.masked and is_disposable(email.masked.rsplit("@", 1)[1], policy):
            suspect.add("disposable_email")
    if policy.risk_is_suspect:
        suspect |= RISKY_PHONE_PROBLEMS & set(q.problems)
    if any(r.reason.startswith(CONFLICT_PREFIXES) for r in q.rejected):
        suspect.add("identity_conflict")
    return Assessment(Verdict.SUSPECT, tuple(sorted(suspect))) if suspect else Assessment(Verdict.VALID, ())


def route_of(verdict: Verdict, policy: QualityPolicy) -> Route:
    """Who a lead with this verdict goes to. Junk never reaches anybody."""
    if verdict is Verdict.JUNK:
        return Route.NONE
    if verdict is Verdict.SUSPECT and policy.suspect_to_verification:
        return Route.VERIFICATION
    return Route.SALES
