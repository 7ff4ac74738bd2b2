"""Whose tenant a dead letter was, read from its payload without trusting it (pure)."""

from __future__ import annotations

import pytest

from leadflow.runtime.dead_letter_tail import MAX_PARSED, _tenant_of


@pytest.mark.parametrize("value, tenant", [
    (b'{"tenant_id": "acme", "event_type": "telepathy"}', "acme"),
    (b'{"tenant_id": 7}', None),
    (b"[1, 2, 3]", None),
    (b"not json", None),
    (b"\xff\xfe\x00garbage", None),
    (b'{"x": ' * 5_000 + b"{}" + b"}" * 5_000, None),  # nested past the parser: RecursionError, not a crash
    (b'{"tenant_id": "acme", "pad": "' + b"x" * MAX_PARSED + b'"}', None),  # too large to open
    (None, None),
])
def test_the_tenant_of_a_dead_letter(value, tenant):
    assert _tenant_of(value) == tenant
