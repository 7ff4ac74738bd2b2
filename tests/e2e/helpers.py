"""Small helpers for end-to-end tests: event builders and polling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


def touchpoint(event_type: str = "form_submitted", *, phone: str | None = None, event_id: str | None = None,
               tenant: str | None = None, store_id: str | None = "store-01", **attributes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id or f"e2e-{uuid.uuid4().hex}",
        "event_type": event_type,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": {"system": "e2e", "channel": "wechat_mp", "store_id": store_id,
                   "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0"},
        "identifiers": [{"type": "phone", "value": phone}] if phone else [],
        "attributes": {"name": "张伟", "city": "上海", "car_model": "Model Y", **attributes},
    }
    if tenant:
        event["tenant_id"] = tenant
    return event


def eventually(probe: Callable[[], T | None], *, timeout_s: float = 30.0, interval_s: float = 0.3) -> T:
    """Poll until `probe` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last: {last!r})")


def unique_phone() -> str:
    """A valid, unique-enough CN mobile number (139 + 8 random digits, not one repeated digit)."""
    digits = f"{uuid.uuid4().int % 10**8:08d}"
    return f"139{digits}"
