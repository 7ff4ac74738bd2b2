"""Push delivery, pure parts: retry policy, delivery status, push ids, the Chinese message, webhook signatures."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify.domain.delivery import (
    parse_quiet_hours,
    quiet_until,
    Delivery,
    DeliveryError,
    DeliveryStatus,
    Push,
    Result,
    RetryPolicy,
    clip_utf8,
    mask_name,
    push_id,
    redact,
    render_task_message,
    signature_header,
    verify_signature,
    webhook_signature,
)

NOW = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = "13812345678"


# ---- back-off ------------------------------------------------------------------------------------------

def test_backoff_grows_exponentially_without_jitter():
    policy = RetryPolicy()
    assert [policy.backoff(n, 0.5) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_caps():
    policy = RetryPolicy()
    assert policy.backoff(9, 0.5) == 256.0
    assert policy.backoff(10, 0.5) == 300.0
    assert policy.backoff(5000, 0.999) == 300.0  # no overflow, and jitter does not push past the cap


@given(attempt=st.integers(1, 40), rand=st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_bounds(attempt, rand):
    policy = RetryPolicy()
    plain = min(policy.base_s * policy.factor ** (attempt - 1), policy.max_backoff_s)
    delay = policy.backoff(attempt, rand)
    assert plain * 0.9 - 1e-9 <= delay <= min(plain * 1.1, policy.max_backoff_s) + 1e-9


def test_jitter_spreads_both_ways():
    policy = RetryPolicy()
    assert policy.backoff(3, 0.0) == pytest.approx(3.6)
    assert policy.backoff(3, 0.999999) == pytest.approx(4.4, abs=1e-5)


@pytest.mark.parametrize("attempt, rand", [(0, 0.5), (1, 1.0), (1, -0.1)])
def test_backoff_refuses_bad_input(attempt, rand):
    with pytest.raises(DeliveryError):
        RetryPolicy().backoff(attempt, rand)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_s": 0}, {"factor": 0.5}, {"max_backoff_s": 0.5},
                                    {"jitter": 1.0}, {"base_s": float("nan")}])
def test_policy_refuses_bad_settings(kwargs):
    with pytest.raises(DeliveryError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)


# ---- next state ----------------------------------------------------------------------------------------

def test_success_is_sent():
    assert RetryPolicy().next_state(1, None, False, NOW) == (DeliveryStatus.SENT, None)


def test_transient_error_retries_after_the_backoff():
    status, at = RetryPolicy().next_state(3, "HTTP 503", True, NOW)
    assert status is DeliveryStatus.RETRYING
    assert at == NOW + timedelta(seconds=4)


def test_transient_error_uses_the_jitter_given():
    _, at = RetryPolicy().next_state(1, "HTTP 503", True, NOW, rand=0.0)
    assert at == NOW + timedelta(seconds=0.9)


def test_permanent_error_fails_at_once():
    assert RetryPolicy().next_state(1, "errcode 81013", False, NOW) == (DeliveryStatus.FAILED, None)


def test_gives_up_after_max_attempts():
    policy = RetryPolicy(max_attempts=3)
    assert policy.next_state(2, "timeout", True, NOW)[0] is DeliveryStatus.RETRYING
    assert policy.next_state(3, "timeout", True, NOW) == (DeliveryStatus.FAILED, None)


def test_delivery_walks_through_its_states():
    policy = RetryPolicy(max_attempts=3)
    d = Delivery("p1")
    assert d.status is DeliveryStatus.PENDING and d.due(NOW)
    d = d.after(Result.retry("HTTP 503"), policy, NOW)
    assert (d.status, d.attempts, d.next_attempt_at, d.last_detail) == (
        DeliveryStatus.RETRYING, 1, NOW + timedelta(seconds=1), "HTTP 503")
    assert not d.due(NOW) and d.due(NOW + timedelta(seconds=1))
    d = d.after(Result.sent("msgid 1"), policy, NOW + timedelta(seconds=1))
    assert (d.status, d.attempts, d.next_attempt_at) == (DeliveryStatus.SENT, 2, None)
    assert d.after(Result.retry("again?"), policy, NOW) is d  # finished deliveries stay finished
    assert not d.due(NOW + timedelta(days=1))


def test_delivery_fails_when_attempts_run_out():
    policy = RetryPolicy(max_attempts=2)
    d = Delivery("p1").after(Result.retry("x"), policy, NOW).after(Result.retry("y"), policy, NOW)
    assert (d.status, d.attempts, d.last_detail) == (DeliveryStatus.FAILED, 2, "y")


def test_result_constructors():
    assert Result.sent() == Result(True, False, "")
    assert Result.retry("busy") == Result(False, True, "busy")
    assert Result.fail("bad") == Result(False, False, "bad")


# ---- push ids ------------------------------------------------------------------------------------------

def test_push_id_is_deterministic_per_task_version_and_channel():
    a = push_id("t1", "task-1", 1, "wecom")
    assert a == push_id("t1", "task-1", 1, "wecom")
    assert a != push_id("t1", "task-1", 2, "wecom")  # a new task version is pushed again
    assert a != push_id("t1", "task-1", 1, "email")
    assert a != push_id("t2", "task-1", 1, "wecom")


def test_push_of_computes_its_id_and_freezes_the_payload():
    payload = {"task_id": "task-1"}
    push = Push.of(tenant_id="t1", task_id="task-1", task_version=3, channel="webhook",
                   recipient="https://example.test/hook", title="t", body="b", payload=payload)
    assert push.push_id == push_id("t1", "task-1", 3, "webhook")
    payload["task_id"] = "changed"
    assert push.payload["task_id"] == "task-1"
    with pytest.raises(TypeError):
        push.payload["x"] = 1  # type: ignore[index]


def test_push_repr_carries_no_personal_data():
    push = Push.of(tenant_id="t1", task_id="task-1", task_version=1, channel="email",
                   recipient="li.si@example.com", title="新线索", body=f"电话 {PHONE}", payload={"phone": PHONE})
    assert "li.si" not in repr(push) and PHONE not in repr(push)


def test_push_refuses_unknown_channel():
    with pytest.raises(DeliveryError, match="channel"):
        Push.of(tenant_id="t1", task_id="task-1", task_version=1, channel="sms", recipient="x", title="t", body="b")


# ---- the message ---------------------------------------------------------------------------------------

def _render(**overrides):
    kwargs = dict(reason="new_valid_lead", grade="H", name="李四光", vehicle="Model Y",
                  due_at=datetime(2025, 3, 3, 1, 10, tzinfo=UTC), now=NOW, tz=SHANGHAI)
    kwargs.update(overrides)
    return render_task_message(**kwargs)


def test_render_new_lead_title():
    msg = _render(score=87.4, store="徐汇店")
    assert msg.title == "新线索（H级）：李** · Model Y，请在 09:10 前首次联系"
    assert "评分 87" in msg.body and "徐汇店" in msg.body and "李四光" not in msg.body


def test_render_names_the_date_of_a_deadline_on_another_day():
    msg = _render(due_at=datetime(2025, 3, 4, 1, 10, tzinfo=UTC), reason="verify_suspect_lead", grade="B")
    assert msg.title == "待核实线索（B级）：李** · Model Y，请在 3月4日 09:10 前核实"


def test_render_without_name_or_vehicle():
    assert _render(name=None, vehicle=None).title == "新线索（H级）：客户，请在 09:10 前首次联系"


PHONES = [PHONE, "+86 138 1234 5678", "138-1234-5678", "(021) 6234 5678"]


@pytest.mark.parametrize("phone", PHONES)
def test_render_never_shows_a_phone(phone):
    msg = _render(name=phone, vehicle=f"Model Y {phone}", store=f"徐汇店 {phone}")
    text = msg.title + msg.body
    assert not re.search(r"\d(?:\D?\d){6,}", text), text
    assert PHONE[-4:] not in text and "5678" not in text


@given(digits=st.text("0123456789", min_size=7, max_size=15), name=st.text(max_size=5))
def test_render_never_shows_seven_digits_in_a_row(digits, name):
    msg = _render(name=name + digits, vehicle=digits + name)
    assert digits not in msg.title + msg.body


def test_render_keeps_short_numbers():
    assert "ES8 2024款" in _render(vehicle="ES8 2024款").title


def test_mask_name():
    assert mask_name("李四") == "李**"
    assert mask_name("Alice") == "A**"
    assert mask_name("  ") == mask_name(None) == mask_name("138") == "客户"


def test_redact():
    assert redact("550 <li.si@example.com> unknown, call 138 1234 5678") == "550 <<redacted>> unknown, call ***"


def test_clip_utf8_cuts_on_a_character_boundary():
    text = "新线索" * 50
    clipped = clip_utf8(text, 128)
    assert len(clipped.encode()) <= 128 and clipped.endswith("…")
    assert clip_utf8("短", 128) == "短"


# ---- signatures ----------------------------------------------------------------------------------------

SECRET = b"whsec_test"
BODY = '{"task_id":"task-1","title":"新线索"}'.encode()


def test_signature_is_hmac_over_timestamp_and_body():
    import hashlib
    import hmac

    assert webhook_signature(SECRET, 1700000000, BODY) == hmac.new(
        SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, 1700000000, BODY) == f"t=1700000000,v1={webhook_signature(SECRET, 1700000000, BODY)}"


def test_verify_accepts_a_fresh_signature():
    header = signature_header(SECRET, 1700000000, BODY)
    assert verify_signature(SECRET, header, BODY, now_ts=1700000100)


def test_verify_rejects_a_tampered_body():
    header = signature_header(SECRET, 1700000000, BODY)
    assert not verify_signature(SECRET, header, BODY.replace(b"task-1", b"task-2"), now_ts=1700000000)


def test_verify_rejects_another_secret():
    header = signature_header(b"other", 1700000000, BODY)
    assert not verify_signature(SECRET, header, BODY, now_ts=1700000000)


def test_verify_rejects_an_old_or_future_timestamp():
    header = signature_header(SECRET, 1700000000, BODY)
    assert not verify_signature(SECRET, header, BODY, now_ts=1700000301)
    assert not verify_signature(SECRET, header, BODY, now_ts=1699999699)
    assert verify_signature(SECRET, header, BODY, now_ts=1700000301, tolerance_s=301)


def test_verify_rejects_a_replayed_signature_under_a_new_timestamp():
    sig = webhook_signature(SECRET, 1700000000, BODY)
    assert not verify_signature(SECRET, f"t=1700000200,v1={sig}", BODY, now_ts=1700000200)


def test_verify_accepts_any_of_several_signatures():
    good = webhook_signature(SECRET, 1700000000, BODY)
    assert verify_signature(SECRET, f"t=1700000000,v1={'0' * 64},v1={good}", BODY, now_ts=1700000000)


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000", "t=1700000000,v1"])
def test_verify_rejects_malformed_headers(header):
    assert not verify_signature(SECRET, header, BODY, now_ts=1700000000)


# ---- quiet hours ------------------------------------------------------------------------------------

def test_quiet_hours_across_midnight_end_in_the_morning_local_time():
    shanghai, window = ZoneInfo("Asia/Shanghai"), parse_quiet_hours("22:00-08:00")
    assert window == (time(22), time(8))
    at = lambda h, m=0, d=2: datetime(2026, 11, d, h, m, tzinfo=UTC)  # noqa: E731
    assert quiet_until(at(2), window, shanghai) is None  # 10:00 local
    assert quiet_until(at(14), window, shanghai) == at(0, d=3)  # 22:00 local -> 08:00 next day
    assert quiet_until(at(18), window, shanghai) == at(0, d=3)  # 02:00 local
    assert quiet_until(at(0), window, shanghai) is None  # 08:00 local: over
    assert quiet_until(at(5), parse_quiet_hours("12:00-14:00"), shanghai) == at(6)  # a lunch break
    assert quiet_until(at(14), None, shanghai) is None
    with pytest.raises(DeliveryError, match="quiet_hours"):
        parse_quiet_hours("late")
