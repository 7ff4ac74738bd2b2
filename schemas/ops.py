"""Operations events. `ops.alerts`: the stream's own trouble, raised by the API's lag watcher: a consumer
group stalled on a topic, or its lag growing reading after reading. Business alerts have their own
topics (`leads.alerts` for sources)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from schemas.base import Event


class StreamAlerted(Event):
    """A consumer group in trouble on a topic. `alert_id` is the same for one condition within an hour, so
    a consumer of this topic (or a second API replica raising it too) can drop a repeat."""

    alert_id: str
    kind: Literal["consumer_stalled", "lag_growing"]
    group: str
    topic: str
    lag: int
    readings: int  # consecutive readings the condition held
    raised_at: datetime
