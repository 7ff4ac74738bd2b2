"""The upstream publisher SDK: validate touchpoints against the contract and produce them to
`touchpoints.raw` with acks=all (kafka-python).

Produces: touchpoints.raw (key `tenant_id:event_id`, value the JSON envelope).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaProducer

from schemas.topics import TOUCHPOINTS_RAW
from schemas.touchpoints import TouchpointReceived


def raw_key(event: TouchpointReceived) -> bytes:
    # Duplicates of one event share a key, so they land on one partition behind the original.
    return f"{event.tenant_id}:{event.event_id}".encode()


class EventProducer:
    """A thread-safe kafka-python producer that waits for acks=all before it reports success."""

    def __init__(self, bootstrap_servers: str, *, timeout_s: float = 30.0, **producer_config: Any) -> None:
        self.timeout_s = timeout_s
        config: dict[str, Any] = {
            "acks": "all",
            "linger_ms": 5,
            "retries": 5,
            "max_in_flight_requests_per_connection": 1,  # keeps order under retries
            "client_id": "leadflow-publisher",
        }
        config.update(producer_config)
        self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **config)

    def send_all(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        """Send (topic, key, value) records; return once the broker acknowledged all of them."""
        futures = [self._producer.send(topic, key=key, value=value) for topic, key, value in records]
        self._producer.flush(timeout=self.timeout_s)
        for future in futures:
            future.get(timeout=self.timeout_s)  # raises the broker's error, if any

    def connected(self) -> bool:
        """Whether the producer holds a connection to a broker it knows (for readiness checks).

        kafka-python's `bootstrap_connected()` turns False once the bootstrap connection has served its
        metadata, so this asks the producer's client about the brokers from that metadata instead;
        `ready()` also reconnects a connection closed for idleness, so the next probe sees it.
        """
        client = self._producer._sender._client
        return any(client.connected(b.node_id) or client.ready(b.node_id) for b in self._producer._metadata.brokers())

    def flush(self) -> None:
        self._producer.flush(timeout=self.timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=self.timeout_s)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Publisher(EventProducer):
    """Publishes touchpoints. Invalid events raise pydantic's ValidationError before anything is sent."""

    def __init__(self, bootstrap_servers: str, *, topic_prefix: str = "", **kwargs: Any) -> None:
        super().__init__(bootstrap_servers, **kwargs)
        self.topic = TOUCHPOINTS_RAW.qualified(topic_prefix)

    @staticmethod
    def validate(event: TouchpointReceived | Mapping[str, Any]) -> TouchpointReceived:
        if isinstance(event, TouchpointReceived):
            return event
        return TouchpointReceived.model_validate(event)

    def publish_many(
        self, events: Iterable[TouchpointReceived | Mapping[str, Any]]
    ) -> list[TouchpointReceived]:
        """Validate all, send all, then wait until the broker acknowledged every one of them."""
        valid = [self.validate(e) for e in events]
        self.send_all((self.topic, raw_key(e), e.to_bytes()) for e in valid)
        return valid

    def publish(self, event: TouchpointReceived | Mapping[str, Any]) -> TouchpointReceived:
        return self.publish_many([event])[0]

    def send_nowait(self, event: TouchpointReceived | Mapping[str, Any]):
        """Send without waiting; returns kafka-python's future. Call `flush()` before relying on it."""
        valid = self.validate(event)
        return self._producer.send(self.topic, key=raw_key(valid), value=valid.to_bytes())


def publish(
    event: TouchpointReceived | Mapping[str, Any],
    *,
    bootstrap_servers: str = "127.0.0.1:9092",
    topic_prefix: str = "",
) -> TouchpointReceived:
    """Publish one touchpoint and wait for the broker's acknowledgement (convenience; opens a producer)."""
    with Publisher(bootstrap_servers, topic_prefix=topic_prefix) as pub:
        return pub.publish(event)
