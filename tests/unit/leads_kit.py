"""Builders for the pure leads tests: identified touchpoints as identity emits them, and the service's
pure pipeline (clean → assess → apply) without the store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.identity import LinkedIdentifier, RejectedIdentifier, TouchpointIdentified
from schemas.touchpoints import EventType, Identifier, IdentifierType, TouchpointReceived
from services.leads.domain.intake import clean_touchpoint, quality_input
from services.leads.domain.lead import Applied, Lead, apply
from services.leads.domain.merging import Filed
from services.leads.domain.policy import LeadPolicy
from services.leads.domain.quality import assess

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=timezone.utc)  # far enough back for a year of minutes after it
HUMAN_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.40"
POLICY = LeadPolicy()
_UNSET = object()


def phone(n: int = 1, *facts: str) -> LinkedIdentifier:
    return LinkedIdentifier(type=IdentifierType.PHONE, link_id=f"ph-{n}", masked=f"139****{n:04d}",
                            facts=list(facts or ("mobile",)))


def device(n: int = 1) -> LinkedIdentifier:
    return LinkedIdentifier(type=IdentifierType.DEVICE_ID, link_id=f"dev-{n}", masked=f"de****{n:02d}")


def identified(event_id: str = "e-1", event_type: EventType = EventType.PAGE_VIEWED, *, minute: float = 0,
               at: datetime | None = None, one_id: str = "w", linked: tuple[LinkedIdentifier, ...] = (),
               user_agent: str | None | object = _UNSET, attributes: dict | None = None, store_id: str | None = None,
               channel: str = "site", campaign_id: str | None = None, ip: str | None = None,
               rejected: tuple[tuple[IdentifierType, str], ...] = (), tenant: str = "t1") -> TouchpointIdentified:
    at = at or T0 + timedelta(minutes=minute)
    linked = linked or (device(),)
    raw = [Identifier(type=i.type, value=i.masked) for i in linked if i.type is not IdentifierType.EMAIL]
    tp = TouchpointReceived(
        event_id=event_id, event_type=event_type, occurred_at=at, tenant_id=tenant,
        source={"system": "web", "channel": channel, "user_agent": HUMAN_UA if user_agent is _UNSET else user_agent,
                "store_id": store_id, "campaign_id": campaign_id, "ip": ip},
        identifiers=raw or [Identifier(type=IdentifierType.DEVICE_ID, value="dev")], attributes=attributes or {},
    )
    return TouchpointIdentified(
        tenant_id=tenant, event_id=event_id, one_id=one_id, touchpoint=tp, identifiers=list(linked),
        rejected_identifiers=[RejectedIdentifier(type=t, reason=r) for t, r in rejected], identified_at=at,
    )


def form(event_id: str, *, minute: float = 0, one_id: str = "w", linked: tuple[LinkedIdentifier, ...] | None = None,
         **attributes) -> TouchpointIdentified:
    return identified(event_id, EventType.FORM_SUBMITTED, minute=minute, one_id=one_id,
                      linked=linked if linked is not None else (phone(), device()),
                      attributes={"fill_seconds": 30, **attributes})


def step(lead: Lead | None, event: TouchpointIdentified, policy: LeadPolicy = POLICY, *, device_forms: int = 0,
         ip_forms: int = 0, bad_phones: frozenset[str] = frozenset()) -> Applied:
    """What the service does with one touchpoint, minus the store."""
    lead = lead or Lead(tenant_id=event.tenant_id, one_id=event.one_id)
    cleaned = clean_touchpoint(event, policy)
    assessment = assess(quality_input(event, cleaned, device_forms=device_forms, ip_forms=ip_forms,
                                      bad_phones=bad_phones), policy.quality)
    return apply(lead, event, cleaned, assessment, policy)


def lead_of(one_id: str, *events: TouchpointIdentified, policy: LeadPolicy = POLICY) -> Lead:
    lead = Lead(tenant_id="t1", one_id=one_id)
    for event in events:
        lead = step(lead, event, policy).lead
    return lead


def filed(event: TouchpointIdentified, policy: LeadPolicy = POLICY) -> Filed:
    """A timeline entry with the verdict the touchpoint got when it was applied."""
    cleaned = clean_touchpoint(event, policy)
    return Filed(event.touchpoint.occurred_at, event, assess(quality_input(event, cleaned), policy.quality))
