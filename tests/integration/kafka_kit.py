"""Reading topics back in integration tests."""

from __future__ import annotations

from kafka import KafkaConsumer


def read_all(infra, topic: str) -> list:
    """Every record of `topic` from the beginning (stops after 4 s without a new one)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=4000)
    try:
        return list(consumer)
    finally:
        consumer.close()
