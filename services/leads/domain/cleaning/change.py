"""What cleaning changed, and why: a machine-readable reason per change."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Fields whose values may be shown in a change; names and phones are personal and never echoed.
DISPLAYABLE_FIELDS = frozenset({"city", "province", "product", "car_model", "budget"})


@dataclass(frozen=True)
class Change:
    """One change to one field. `before`/`after` are set only for non-personal fields."""

    field: str
    reason: str
    before: str | None = None
    after: str | None = None


def lookup_key(text: str) -> str:
    """Case-, width-, space- and punctuation-insensitive key: " Model-Y " and "ＭＯＤＥＬＹ" → "modely"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s\-_.'’·/]+", "", text)
