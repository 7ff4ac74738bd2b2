"""The stream watch: from the lag collector's readings, the consumer groups in trouble, as `StreamAlerted`
events for `ops.alerts` (the Prometheus rules LeadflowConsumerStalled and LeadflowConsumerLagHigh say the
same to Alertmanager). Stateful but pure: readings and `now` come in, alerts come out; publishing them
is the caller's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.ops import StreamAlerted


@dataclass(frozen=True)
class WatchPolicy:
    growing_readings: int = 6  # the lag grew at this many readings in a row (a minute at the default 10 s)
    min_lag: int = 1000  # and is at least this much: a small lag that grows is traffic, not trouble


class StreamWatch:
    def __init__(self, policy: WatchPolicy = WatchPolicy()) -> None:
        self.policy = policy
        self._lag: dict[tuple[str, str], int] = {}
        self._growing: dict[tuple[str, str], int] = {}
        self._stalled: dict[tuple[str, str], int] = {}
        self._raised: set[str] = set()

    def observe(self, groups: Iterable[Mapping[str, Any]], now: datetime) -> list[StreamAlerted]:
        """One new reading (call it once per reading, not per poll): the alerts it raises, each once an hour."""
        out = []
        for g in groups:
            key = (g["group"], g["topic"])
            before = self._lag.get(key)
            self._lag[key] = g["lag"]
            self._growing[key] = self._growing.get(key, 0) + 1 if before is not None and g["lag"] > before else 0
            self._stalled[key] = self._stalled.get(key, 0) + 1 if g["stalled"] else 0
            if self._stalled[key]:
                out += self._raise("consumer_stalled", key, g["lag"], self._stalled[key], now)
            if self._growing[key] >= self.policy.growing_readings and g["lag"] >= self.policy.min_lag:
                out += self._raise("lag_growing", key, g["lag"], self._growing[key], now)
        return out

    def _raise(self, kind: str, key: tuple[str, str], lag: int, readings: int, now: datetime) -> list[StreamAlerted]:
        alert_id = f"{kind}:{key[0]}:{key[1]}:{now:%Y-%m-%dT%H}"
        if alert_id in self._raised:
            return []
        self._raised.add(alert_id)
        return [StreamAlerted(alert_id=alert_id, kind=kind, group=key[0], topic=key[1], lag=lag, readings=readings,
                              raised_at=now)]
