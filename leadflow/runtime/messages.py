"""What a handler returns: messages to emit, named by their registered topic. No Kafka here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from schemas.base import Event
from schemas.topics import TopicSpec


@dataclass(frozen=True)
class Outgoing:
    topic: TopicSpec
    key: str
    value: Event


@dataclass(frozen=True)
class Handled:
    """A handler's result: messages to emit, then (once the broker acknowledged them) `after_emit`."""

    outgoing: Sequence[Outgoing] = ()
    after_emit: Callable[[], Awaitable[None]] | None = None
