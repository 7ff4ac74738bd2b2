"""Runs a simulation: generates the scenario and publishes it, paced, to Kafka or to the HTTP API.

Consumes: nothing (the scenario comes from the seed).
Produces: touchpoints.raw through `leadflow.sdk.Publisher` (or POST {api_url}/v1/events in batches,
the same bytes), and the ground truth as JSON at `truth_path`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import httpx

from leadflow.sdk import Publisher
from leadflow.simulate.scenario import SimulatedEvent, generate
from schemas.touchpoints import TouchpointReceived


@dataclass(frozen=True)
class SimulationReport:
    events_sent: int
    junk_events: int
    persons: int
    converted: int
    elapsed_s: float
    achieved_rate: float  # events per second, acknowledgements included


class Sink(Protocol):
    def send(self, event: TouchpointReceived) -> None: ...
    def idle(self) -> None: ...  # called before the pacer sleeps: a chance to ship what waits
    def drain(self) -> None: ...  # ship everything and raise unless all of it was accepted
    def close(self) -> None: ...


class KafkaSink:
    """Sends through the publisher SDK without waiting; `drain` checks every future."""

    def __init__(self, publisher: Any) -> None:
        self.publisher, self.futures = publisher, []

    def send(self, event: TouchpointReceived) -> None:
        self.futures.append(self.publisher.send_nowait(event))

    def idle(self) -> None:
        pass  # the producer batches and lingers by itself

    def drain(self) -> None:
        self.publisher.flush()
        for future in self.futures:
            future.get(timeout=self.publisher.timeout_s)  # raises the broker's error, if any
        self.futures.clear()

    def close(self) -> None:
        self.publisher.close()


class HttpSink:
    """Posts {"events": [...]} batches to the gateway; a batch waits at most `linger_s`."""

    def __init__(self, client: httpx.Client, *, batch_size: int = 100, linger_s: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.batch_size, self.linger_s, self.clock = client, batch_size, linger_s, clock
        self.batch: list[bytes] = []
        self.first_at = 0.0

    def send(self, event: TouchpointReceived) -> None:
        if not self.batch:
            self.first_at = self.clock()
        self.batch.append(event.to_bytes())  # the very bytes the Kafka path would produce
        if len(self.batch) >= self.batch_size:
            self._post()

    def idle(self) -> None:
        if self.batch and self.clock() - self.first_at >= self.linger_s:
            self._post()

    def drain(self) -> None:
        if self.batch:
            self._post()

    def _post(self) -> None:
        body = b'{"events":[' + b",".join(self.batch) + b"]}"
        headers = {"Content-Type": "application/json"}
        response = self.client.post("/v1/events", content=body, headers=headers)
        response.raise_for_status()  # the gateway accepts or rejects a batch as a whole
        self.batch.clear()

    def close(self) -> None:
        self.client.close()


def publish_paced(events: Sequence[SimulatedEvent], sink: Sink, *, rate: float,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> float:
    """Send event i at start + i/rate (never earlier), drain, and return the seconds it all took."""
    start = clock()
    for i, sim in enumerate(events):
        due = start + i / rate
        if clock() < due:
            sink.idle()
            sleep(max(0.0, due - clock()))  # idle() may have used part of the wait
        sink.send(sim.event)
    sink.drain()
    return clock() - start


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a file


def run(*, bootstrap_servers: str = "127.0.0.1:9092", tenant: str, rate: float, duration: float,
        seed: int, truth_path: Path | None = None, topic_prefix: str = "", api_url: str | None = None,
        api_key: str | None = None, batch_size: int = 100, now: datetime | None = None) -> SimulationReport:
    """Publish int(rate*duration) simulated events at `rate`/s to Kafka, or to the API if `api_url`."""
    if rate <= 0 or duration < 0:
        raise ValueError("rate must be > 0 and duration >= 0")
    if api_url and not api_key:
        raise ValueError("api_url needs api_key")
    events, truth = generate(tenant, seed, int(rate * duration), now or datetime.now(timezone.utc))
    if truth_path is not None:
        # Written before sending, so that an evaluator can start and a failed run still has its truth.
        _write_atomically(Path(truth_path), truth.to_json())
    if api_url:
        headers = {"X-Api-Key": api_key or ""}
        client = httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=30.0)
        sink: Sink = HttpSink(client, batch_size=batch_size)
    else:
        sink = KafkaSink(Publisher(bootstrap_servers, topic_prefix=topic_prefix))
    try:
        elapsed = publish_paced(events, sink, rate=rate)
    finally:
        sink.close()
    return SimulationReport(
        events_sent=len(events),
        junk_events=sum(e.junk for e in events),
        persons=len(truth.persons),
        converted=sum(p.converted for p in truth.persons.values()),
        elapsed_s=round(elapsed, 3),
        achieved_rate=round(len(events) / elapsed, 2) if elapsed > 0 else 0.0,
    )
