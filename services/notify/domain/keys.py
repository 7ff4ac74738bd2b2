"""One check for every table of the notify policy file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def check_keys(data: Mapping[str, Any], known: Iterable[str], where: str, error: type[ValueError] = ValueError) -> None:
    """Refuse keys a table does not know, naming them: a typo in a policy file must not pass as a default."""
    unknown = set(data) - set(known)
    if unknown:
        raise error(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
