"""Base model of every event: frozen, strict about unknown envelope fields, JSON on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """An immutable fact. Evolve by adding optional fields; never rename or retype."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes):
        return cls.model_validate_json(data)
