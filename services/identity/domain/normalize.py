"""Normalise identifiers: the one implementation used by ingest, stitching and lookup."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

from schemas.touchpoints import Identifier, IdentifierType

DEFAULT_REGION = "CN"
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_PUNCT = re.compile(r"[\s\-().\u3000]")


class InvalidIdentifier(ValueError):
    """The value cannot be normalised; `reason` is machine-readable and never echoes the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NormalizedIdentifier:
    type: IdentifierType
    value: str
    namespace: str = ""

    @property
    def identity_key(self) -> str:
        """Type, scope and value: what makes two identifiers the same identifier."""
        return f"{self.type.value}|{self.namespace}|{self.value}"


def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    text = unicodedata.normalize("NFKC", raw)  # full-width digits and plus signs
    text = _PHONE_PUNCT.sub("", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    elif len(text) == 13 and text.startswith("86") and text[2] == "1":
        text = "+" + text  # 86 + an 11-digit mobile number, written without the plus
    if not re.fullmatch(r"\+?\d{5,17}", text):
        raise InvalidIdentifier("phone_not_a_number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier("phone_not_a_number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("phone_invalid_for_region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(identifier: Identifier) -> NormalizedIdentifier:
    kind, raw = identifier.type, identifier.value.strip()
    namespace = ""
    match kind:
        case IdentifierType.PHONE:
            value = normalize_phone(raw)
        case IdentifierType.EMAIL:
            value = unicodedata.normalize("NFKC", raw).lower()
            if not _EMAIL.match(value):
                raise InvalidIdentifier("email_malformed")
        case IdentifierType.VIN:
            value = unicodedata.normalize("NFKC", raw).upper().replace(" ", "")
            if not _VIN.match(value):
                raise InvalidIdentifier("vin_malformed")
        case IdentifierType.DEVICE_ID:
            value = raw.lower()
        case IdentifierType.WECHAT_OPENID:
            value = raw
            namespace = (identifier.namespace or "").strip()
            if not namespace:
                raise InvalidIdentifier("openid_without_namespace")
        case _:
            value = raw
    if not value:
        raise InvalidIdentifier("empty")
    return NormalizedIdentifier(kind, value, namespace)
