"""From an identified touchpoint to what the lead needs: its cleaned fields and the inputs of its verdict."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.identity import TouchpointIdentified
from schemas.touchpoints import EventType, IdentifierType
from services.leads.domain.cleaning import Cleaned, clean
from services.leads.domain.policy import LeadPolicy
from services.leads.domain.quality import QualityInput

# What a brusher repeats: forms. Page views from one office IP are not brushing.
COUNTED_EVENTS = frozenset({EventType.FORM_SUBMITTED})


def clean_touchpoint(event: TouchpointIdentified, policy: LeadPolicy) -> Cleaned:
    tp = event.touchpoint
    return clean(tp.attributes, event.identifiers, event.rejected_identifiers,
                 catalogue=policy.catalogue, budget_rules=policy.budget_rules)


def devices_of(event: TouchpointIdentified) -> list[str]:
    """The link ids of the devices a touchpoint came from (pseudonymous: safe to count by)."""
    return [i.link_id for i in event.identifiers if i.type is IdentifierType.DEVICE_ID]


def counted(event: TouchpointIdentified) -> bool:
    return event.touchpoint.event_type in COUNTED_EVENTS


def quality_input(event: TouchpointIdentified, cleaned: Cleaned, *, device_forms: int = 0, ip_forms: int = 0,
                  bad_phones: Iterable[str] = ()) -> QualityInput:
    tp = event.touchpoint
    return QualityInput(
        event_type=tp.event_type,
        user_agent=tp.source.user_agent,
        fill_seconds=getattr(tp.typed_attributes(), "fill_seconds", None),
        problems=cleaned.problems,
        identifiers=tuple(event.identifiers),
        rejected=tuple(event.rejected_identifiers),
        device_forms=device_forms,
        ip_forms=ip_forms,
        bad_phone_link_ids=frozenset(bad_phones),
    )
