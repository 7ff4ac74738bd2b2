"""Phone findings from what identity tells about a person's phones (facts and rejections, never values)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.identity import LinkedIdentifier, RejectedIdentifier
from schemas.touchpoints import IdentifierType

# Rejections of a phone by the identity service → finding.
REJECTION_FINDINGS = {
    "blocked_test_number": "test_number",
    "phone_invalid_for_region": "invalid_phone",
    "phone_not_a_number": "invalid_phone",
    "limit:phone": "phone_over_limit",
    "quarantined": "phone_quarantined",
}
# Facts of a linked phone → finding (mobile and landline are reachability, not findings).
FACT_FINDINGS = {
    "virtual_operator": "virtual_operator",
    "sequential_digits": "sequential_digits",
    "repeated_digits": "repeated_digits",
    "foreign": "foreign_phone",
}
JUNK_FINDINGS = frozenset({"invalid_phone", "test_number"})
RISK_FINDINGS = frozenset({"virtual_operator", "sequential_digits", "repeated_digits", "foreign_phone"})
REACHABLE_FACTS = frozenset({"mobile", "landline"})


@dataclass(frozen=True)
class PhoneFindings:
    reachable: bool  # a valid mobile or landline is linked
    reasons: tuple[str, ...] = ()  # sorted, unique


def phone_findings(identifiers: Iterable[LinkedIdentifier], rejected: Iterable[RejectedIdentifier]) -> PhoneFindings:
    """What the person's linked and rejected phones say: reachable, junk or risky."""
    phones = [i for i in identifiers if i.type is IdentifierType.PHONE]
    reasons: set[str] = set()
    for r in rejected:
        if r.type is IdentifierType.PHONE:
            reason = r.reason
            if reason.startswith("phone_invalid") or reason.startswith("phone_not"):
                reason = "phone_not_a_number" if reason.startswith("phone_not") else "phone_invalid_for_region"
            reasons.add(REJECTION_FINDINGS.get(reason, "phone_rejected"))
    for phone in phones:
        reasons.update(FACT_FINDINGS[f] for f in phone.facts if f in FACT_FINDINGS)
    kinds = {f for phone in phones for f in phone.facts if f in REACHABLE_FACTS}
    if kinds == {"landline"}:
        reasons.add("landline_only")
    return PhoneFindings(reachable=bool(kinds), reasons=tuple(sorted(reasons)))
