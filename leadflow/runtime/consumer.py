"""The error policy of every stream consumer, in one place.

For each record: decode with the topic's model, run the handler, emit what it returns, and only then
let Faust acknowledge the offset. A record that cannot be decoded, or that makes the handler fail
with a non-transient error, goes to the consumer's dead-letter topic with the reason, the source
topic, partition and offset, and the original bytes. Transient failures (store or broker away) are
retried with back-off, forever: the offset does not move, nothing is lost, nothing is skipped.

A duplicate key is retried too, a few times: it is how FerretDB v1 answers an upsert that lost a race
with another worker's (MongoDB retries those itself), and every handler is idempotent, so the next
attempt finds the document and updates it. One that persists is a bug, and is dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError
from faust.exceptions import ProducerSendError
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from leadflow.runtime import metrics
from leadflow.runtime.messages import Handled, Outgoing
from leadflow.runtime.errors import RetryLater
from leadflow.runtime.store import TRANSIENT_STORE_ERRORS
from schemas.dead_letters import DeadLetterHeaders

log = logging.getLogger(__name__)

M = TypeVar("M")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = TRANSIENT_STORE_ERRORS + (
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    ProducerSendError,  # Faust's wrapper of the producer's KafkaError: the broker is away
    asyncio.TimeoutError,
    ConnectionError,
    RetryLater,
)

DUPLICATE_KEY_ATTEMPTS = 3

Send = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]] | None], Awaitable[None]]


def describe_validation_error(exc: ValidationError) -> str:
    """Field paths and messages only: pydantic's input echo could carry a phone number."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(record)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:2000]


class RecordProcessor:
    """Applies the policy for one consumer of one source topic."""

    def __init__(
        self,
        *,
        service: str,
        source_topic: str,
        dead_letter_topic: str,
        send: Send,
        topic_prefix: str,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.service = service
        self.source_topic = source_topic
        self.dead_letter_topic = dead_letter_topic
        self._send = send
        self._prefix = topic_prefix
        self._max_backoff_s = max_backoff_s

    async def process(
        self,
        *,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        offset: int,
        decode: Callable[[bytes], M],
        handle: Callable[[M], Awaitable[Handled]],
    ) -> None:
        started = time.perf_counter()
        metrics.EVENTS_CONSUMED.labels(self.service, self.source_topic).inc()
        try:
            if value is None:
                raise ValueError("empty record (tombstone) on a topic that carries events")
            record = decode(value)
        except ValidationError as exc:
            reason = "invalid_json" if _is_json_error(exc) else "validation_error"
            await self._dead_letter(key, value, partition, offset, reason, describe_validation_error(exc))
            return
        except (ValueError, UnicodeDecodeError) as exc:
            await self._dead_letter(key, value, partition, offset, "undecodable", str(exc)[:500])
            return

        attempt = duplicates = 0
        while True:
            try:
                result = await handle(record)
                for out in result.outgoing:
                    await self.emit(out)
                if result.after_emit is not None:
                    await result.after_emit()
                break
            except (*TRANSIENT_ERRORS, DuplicateKeyError) as exc:
                attempt += 1
                if isinstance(exc, DuplicateKeyError):
                    duplicates += 1
                    if duplicates >= DUPLICATE_KEY_ATTEMPTS:
                        await self._failed(key, value, partition, offset, exc)
                        break
                delay = min(self._max_backoff_s, 0.2 * 2 ** min(attempt, 10))
                metrics.RETRIES.labels(self.service, self.source_topic, type(exc).__name__).inc()
                log.warning(
                    "%s: transient %s at %s[%d]@%d, retry %d in %.1fs",
                    self.service, type(exc).__name__, self.source_topic, partition, offset, attempt, delay,
                )
                await asyncio.sleep(delay)
            except Exception as exc:  # noqa: BLE001 - a bug on one record must not stop the partition
                await self._failed(key, value, partition, offset, exc)
                break
        metrics.PROCESSING_SECONDS.labels(self.service, self.source_topic).observe(
            time.perf_counter() - started
        )

    async def _failed(self, key: bytes | None, value: bytes, partition: int, offset: int, exc: Exception) -> None:
        log.error("%s: handler failed at %s[%d]@%d", self.service, self.source_topic, partition, offset,
                  exc_info=exc)
        await self._dead_letter(key, value, partition, offset, "handler_error", f"{type(exc).__name__}: {exc}"[:500])

    async def emit(self, out: Outgoing) -> None:
        topic = out.topic.qualified(self._prefix)
        await self._send(topic, out.key.encode(), out.value.to_bytes(), None)
        metrics.EVENTS_PRODUCED.labels(self.service, out.topic.name).inc()

    async def _dead_letter(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, reason: str, error: str
    ) -> None:
        headers = DeadLetterHeaders(
            reason=reason,
            error=error,
            source_topic=self.source_topic,
            source_partition=partition,
            source_offset=offset,
            consumer=self.service,
            failed_at=datetime.now(UTC).isoformat(),
        )
        log.warning(
            "%s: dead-lettered %s[%d]@%d: %s", self.service, self.source_topic, partition, offset, reason
        )
        # The dead letter itself must not be lost: retry the broker like any transient failure.
        attempt = 0
        while True:
            try:
                await self._send(self.dead_letter_topic, key, value or b"", headers.to_headers())
                break
            except TRANSIENT_ERRORS:
                attempt += 1
                await asyncio.sleep(min(self._max_backoff_s, 0.2 * 2 ** min(attempt, 10)))
        metrics.DEAD_LETTERS.labels(self.service, self.source_topic, reason).inc()


def _is_json_error(exc: ValidationError) -> bool:
    return any(e["type"] == "json_invalid" for e in exc.errors(include_input=False))
