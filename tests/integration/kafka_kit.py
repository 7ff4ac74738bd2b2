"""Reading topics back in integration tests."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer

from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.consumer import RecordProcessor
from schemas.topics import dead_letter_topic


def read_all(infra, topic: str) -> list:
    """Every record of `topic` from the beginning (stops after 4 s without a new one)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=4000)
    try:
        return list(consumer)
    finally:
        consumer.close()


async def process_through_policy(infra, *, service: str, source, prefix: str, outputs: tuple = (), key: bytes,
                                 records: list[bytes], decode, handle) -> None:
    """Feed `records` of the `source` topic spec to `handle` through the runtime's record processor on the
    real broker: what it emits lands on the (prefixed) output topics, what it refuses in `service`'s
    dead-letter topic of `source`."""
    dlq = dead_letter_topic(source, service)
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, specs=(source, *outputs, dlq))
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(topic, key, value, headers):
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)

    processor = RecordProcessor(service=service, source_topic=source.name, dead_letter_topic=dlq.qualified(prefix),
                                send=send, topic_prefix=prefix)
    try:
        for offset, value in enumerate(records):
            await processor.process(key=key, value=value, partition=0, offset=offset, decode=decode, handle=handle)
    finally:
        await producer.stop()
