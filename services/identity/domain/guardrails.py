"""Junk identifier values that must never link anybody to anybody."""

from __future__ import annotations

import re

from services.identity.domain.normalize import NormalizedIdentifier
from schemas.touchpoints import IdentifierType

BLOCKED_PHONES = frozenset({"+8613800138000", "+8600000000000", "+8612345678901", "+8613888888888"})
BLOCKED_VALUES = frozenset({"null", "undefined", "none", "nil", "unknown", "test", "0", "-"})
_ONE_REPEATED_DIGIT = re.compile(r"^(\d)\1+$")


def blocked_reason(identifier: NormalizedIdentifier) -> str | None:
    """Why this value is junk, or None when it may link."""
    value = identifier.value
    if value.lower() in BLOCKED_VALUES:
        return "blocked_placeholder"
    if identifier.type is IdentifierType.PHONE:
        national = value.removeprefix("+86")
        if value in BLOCKED_PHONES or _ONE_REPEATED_DIGIT.match(national):
            return "blocked_test_number"
    if identifier.type is IdentifierType.DEVICE_ID and set(value) <= set("0-"):
        return "blocked_zero_device"
    return None
