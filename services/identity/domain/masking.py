"""Mask identifier values for display: 138****1111, z***@qq.com."""

from __future__ import annotations

from schemas.touchpoints import IdentifierType


def mask(kind: IdentifierType, value: str) -> str:
    if kind is IdentifierType.PHONE:
        national = value.removeprefix("+86")
        return f"{national[:3]}****{national[-4:]}" if len(national) >= 8 else "****"
    if kind is IdentifierType.EMAIL and "@" in value:
        local, domain = value.split("@", 1)
        return f"{local[:1]}***@{domain}"
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[:2]}{'*' * min(8, len(value) - 4)}{value[-2:]}"
