"""Dead letters: a record a consumer could not process, kept byte for byte.

Following the Kafka Connect convention, a dead-letter record carries the original key and value
unchanged; what happened travels in headers, described by `DeadLetterHeaders`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

HEADER_PREFIX = "leadflow.dlq."


class DeadLetterHeaders(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str  # machine-readable, e.g. "invalid_json", "validation_error", "handler_error"
    error: str  # human-readable detail; never contains raw identifier values
    source_topic: str
    source_partition: int
    source_offset: int
    consumer: str
    failed_at: str

    def to_headers(self) -> list[tuple[str, bytes]]:
        return [(HEADER_PREFIX + k, str(v).encode()) for k, v in self.model_dump().items()]

    @classmethod
    def from_headers(cls, headers) -> "DeadLetterHeaders":
        found = {
            k.removeprefix(HEADER_PREFIX): (v.decode() if isinstance(v, bytes) else v)
            for k, v in headers
            if k.startswith(HEADER_PREFIX)
        }
        return cls.model_validate(found)
