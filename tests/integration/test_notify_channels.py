"""Delivery channels against real local servers: a WeCom-shaped API and a webhook receiver (aiohttp), and
an SMTP server (aiosmtpd). Nothing here needs the broker or the store."""

from __future__ import annotations

import asyncio
import email
import json
import socket
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from services.notify.adapters.channels import Channel, EmailChannel, InboxChannel, WebhookChannel, WeComChannel
from services.notify.domain.delivery import (
    PUSH_ID_HEADER,
    SIGNATURE_HEADER,
    Delivery,
    DeliveryStatus,
    Push,
    Result,
    RetryPolicy,
    verify_signature,
)

CORP_ID = "ww-corp"
CORP_SECRET = "corp-secret-value"
AGENT_ID = 1000002
NOW = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def _push(channel: str, recipient: str, *, url: str | None = "https://app.test/tasks/task-1", version: int = 1,
          payload: dict[str, Any] | None = None) -> Push:
    return Push.of(tenant_id="t1", task_id="task-1", task_version=version, channel=channel, recipient=recipient,
                   title="新线索（H级）：李** · Model Y，请在 09:10 前首次联系",
                   body="客户：李**\n等级：H级\n意向车型：Model Y", url=url, payload=payload)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a WeCom-shaped server -----------------------------------------------------------------------------

@dataclass
class FakeWeCom:
    """The two WeCom endpoints a push uses. `fail` queues what the next message sends do: "503", an
    errcode (45009, -1, 81013), "expire" (the current token dies: 42001), or "slow"."""

    expires_in: int = 7200
    users: frozenset[str] = frozenset({"zhangsan", "lisi"})
    token_requests: list[dict[str, str]] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    fail: deque[Any] = field(default_factory=deque)
    issued: int = 0
    valid: set[str] = field(default_factory=set)
    base_url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/message/send", self.send)
        return app

    async def gettoken(self, request: web.Request) -> web.Response:
        self.token_requests.append(dict(request.query))
        if request.query.get("corpid") != CORP_ID or request.query.get("corpsecret") != CORP_SECRET:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.issued += 1
        token = f"token-{self.issued}"
        self.valid.add(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in})

    async def send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        body = await request.json()
        self.sends.append({"token": token, "body": body})
        mode = self.fail.popleft() if self.fail else None
        if mode == "503":
            return web.Response(status=503, text="busy")
        if mode == "slow":
            await asyncio.sleep(2)
        if mode == "expire":
            self.valid.discard(token)
        if token not in self.valid:
            code = 42001 if token.startswith("token-") else 40014
            return web.json_response({"errcode": code, "errmsg": "access_token expired"})
        if isinstance(mode, int):
            return web.json_response({"errcode": mode, "errmsg": f"simulated {mode}"})
        if body.get("agentid") != AGENT_ID:
            return web.json_response({"errcode": 40056, "errmsg": "invalid agentid"})
        if body["touser"] not in self.users:
            return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": body["touser"]})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"msg-{len(self.sends)}"})


@pytest.fixture
async def wecom():
    server = FakeWeCom()
    runner, server.base_url = await _serve(server.app())
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=0.5) as client:
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wecom(server: FakeWeCom, client: httpx.AsyncClient, clock: Clock | None = None,
           secret: str = CORP_SECRET) -> WeComChannel:
    return WeComChannel(server.base_url, CORP_ID, secret, AGENT_ID, client, **({"clock": clock} if clock else {}))


async def test_wecom_sends_a_textcard_and_caches_the_token(wecom, http):
    channel = _wecom(wecom, http)
    assert isinstance(channel, Channel)
    first = await channel.send(_push("wecom", "zhangsan"))
    second = await channel.send(_push("wecom", "lisi", version=2))
    assert first.ok and second.ok, (first, second)
    assert first.detail == "msgid msg-1"
    assert wecom.token_requests == [{"corpid": CORP_ID, "corpsecret": CORP_SECRET}]  # fetched once
    assert [s["token"] for s in wecom.sends] == ["token-1", "token-1"]
    assert wecom.sends[0]["body"] == {
        "touser": "zhangsan", "msgtype": "textcard", "agentid": AGENT_ID,
        "textcard": {"title": "新线索（H级）：李** · Model Y，请在 09:10 前首次联系",
                     "description": "客户：李**\n等级：H级\n意向车型：Model Y",
                     "url": "https://app.test/tasks/task-1", "btntxt": "详情"},
    }


async def test_wecom_sends_text_without_a_url(wecom, http):
    result = await _wecom(wecom, http).send(_push("wecom", "zhangsan", url=None))
    assert result.ok
    body = wecom.sends[0]["body"]
    assert body["msgtype"] == "text" and "textcard" not in body
    assert body["text"]["content"].startswith("新线索（H级）") and "意向车型：Model Y" in body["text"]["content"]


async def test_wecom_refetches_the_token_when_it_expires_by_time(wecom, http):
    wecom.expires_in = 600
    clock = Clock()
    channel = _wecom(wecom, http, clock)
    assert (await channel.send(_push("wecom", "zhangsan"))).ok
    clock.now += 500  # inside expires_in less the safety margin
    assert (await channel.send(_push("wecom", "zhangsan"))).ok
    assert len(wecom.token_requests) == 1
    clock.now += 60  # 560 s: past 600 − 60
    assert (await channel.send(_push("wecom", "zhangsan"))).ok
    assert len(wecom.token_requests) == 2
    assert [s["token"] for s in wecom.sends] == ["token-1", "token-1", "token-2"]


async def test_wecom_refreshes_a_rejected_token_once_and_resends(wecom, http):
    channel = _wecom(wecom, http)
    assert (await channel.send(_push("wecom", "zhangsan"))).ok
    wecom.fail.append("expire")  # WeCom invalidates the token early (42001)
    result = await channel.send(_push("wecom", "zhangsan", version=2))
    assert result.ok, result
    assert len(wecom.token_requests) == 2
    assert [s["token"] for s in wecom.sends] == ["token-1", "token-1", "token-2"]
    assert (await channel.send(_push("wecom", "zhangsan", version=3))).ok  # the new token is cached
    assert len(wecom.token_requests) == 2


async def test_wecom_does_not_refresh_forever(wecom, http):
    channel = _wecom(wecom, http)
    wecom.fail.extend(["expire", "expire"])
    result = await channel.send(_push("wecom", "zhangsan"))
    assert (result.ok, result.retryable) == (False, True)
    assert result.detail.startswith("errcode 42001")
    assert len(wecom.token_requests) == 2 and len(wecom.sends) == 2


@pytest.mark.parametrize("mode, detail", [("503", "HTTP 503"), (45009, "errcode 45009: simulated 45009"),
                                          (-1, "errcode -1: simulated -1")])
async def test_wecom_transient_errors_are_retryable(wecom, http, mode, detail):
    channel = _wecom(wecom, http)
    wecom.fail.append(mode)
    assert await channel.send(_push("wecom", "zhangsan")) == Result.retry(detail)
    assert (await channel.send(_push("wecom", "zhangsan"))).ok  # and the next try goes through


async def test_wecom_timeout_is_retryable(wecom, http):
    wecom.fail.append("slow")
    result = await _wecom(wecom, http).send(_push("wecom", "zhangsan"))
    assert (result.ok, result.retryable, result.detail) == (False, True, "ReadTimeout")


async def test_wecom_other_errcodes_are_permanent(wecom, http):
    wecom.fail.append(81013)
    result = await _wecom(wecom, http).send(_push("wecom", "zhangsan"))
    assert result == Result.fail("errcode 81013: simulated 81013")


async def test_wecom_unknown_user_is_permanent(wecom, http):
    result = await _wecom(wecom, http).send(_push("wecom", "nobody"))
    assert result == Result.fail("invalid user")


async def test_wecom_wrong_secret_is_permanent_and_not_told(wecom, http):
    result = await _wecom(wecom, http, secret="wrong-secret").send(_push("wecom", "zhangsan"))
    assert (result.ok, result.retryable) == (False, False)
    assert result.detail == "gettoken: errcode 40001: invalid credential"
    assert wecom.sends == []
    assert "wrong-secret" not in repr(_wecom(wecom, http, secret="wrong-secret"))


async def test_wecom_down_is_retryable(http):
    channel = WeComChannel(f"http://127.0.0.1:{_free_port()}", CORP_ID, CORP_SECRET, AGENT_ID, http)
    result = await channel.send(_push("wecom", "zhangsan"))
    assert (result.ok, result.retryable, result.detail) == (False, True, "gettoken: ConnectError")


async def test_wecom_delivery_retries_until_sent(wecom, http):
    """The channel and the policy together: two transient failures, then the push goes out."""
    channel, policy = _wecom(wecom, http), RetryPolicy()
    wecom.fail.extend(["503", 45009])
    delivery, now, waits = Delivery(_push("wecom", "zhangsan").push_id), NOW, []
    while delivery.due(now):
        delivery = delivery.after(await channel.send(_push("wecom", "zhangsan")), policy, now)
        if delivery.next_attempt_at is not None:
            waits.append((delivery.next_attempt_at - now).total_seconds())
            now = delivery.next_attempt_at
    assert (delivery.status, delivery.attempts, delivery.last_detail) == (DeliveryStatus.SENT, 3, "msgid msg-3")
    assert waits == [1.0, 2.0]


# ---- webhook -------------------------------------------------------------------------------------------

WEBHOOK_SECRET = b"whsec_tenant_t1"


@dataclass
class Receiver:
    """A webhook receiver that checks the signature (401 when it does not verify) and then answers
    the status queued in `statuses` (200 when empty)."""

    secret: bytes = WEBHOOK_SECRET
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        return app

    async def hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        now_ts = int(datetime.now(UTC).timestamp())
        verified = verify_signature(self.secret, request.headers.get(SIGNATURE_HEADER, ""), raw, now_ts)
        self.received.append({"headers": dict(request.headers), "raw": raw, "verified": verified})
        if not verified:
            return web.Response(status=401)
        return web.Response(status=self.statuses.popleft() if self.statuses else 200)


@pytest.fixture
async def receiver():
    server = Receiver()
    runner, base = await _serve(server.app())
    server.url = f"{base}/hook"
    try:
        yield server
    finally:
        await runner.cleanup()


PAYLOAD = {"event": "task.created", "task_id": "task-1", "title": "新线索（H级）：李**", "grade": "H"}


async def test_webhook_posts_a_signed_payload(receiver, http):
    push = _push("webhook", receiver.url, payload=PAYLOAD)
    result = await WebhookChannel(WEBHOOK_SECRET, http).send(push)
    assert result == Result.sent("HTTP 200")
    [got] = receiver.received
    assert got["verified"]
    assert got["headers"][PUSH_ID_HEADER] == push.push_id
    assert got["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(got["raw"].decode()) == PAYLOAD  # the Chinese text arrives as sent


async def test_webhook_with_another_secret_is_refused_for_good(receiver, http):
    result = await WebhookChannel(b"not-the-tenant-secret", http).send(_push("webhook", receiver.url, payload=PAYLOAD))
    assert result == Result.fail("HTTP 401")
    assert receiver.received[0]["verified"] is False


async def test_webhook_with_a_stale_clock_is_refused(receiver, http):
    stale = WebhookChannel(WEBHOOK_SECRET, http, clock=lambda: datetime.now(UTC).timestamp() - 3600)
    assert await stale.send(_push("webhook", receiver.url, payload=PAYLOAD)) == Result.fail("HTTP 401")


@pytest.mark.parametrize("status, retryable", [(429, True), (500, True), (503, True), (400, False), (404, False),
                                               (410, False)])
async def test_webhook_status_decides_retry(receiver, http, status, retryable):
    receiver.statuses.append(status)
    result = await WebhookChannel(WEBHOOK_SECRET, http).send(_push("webhook", receiver.url, payload=PAYLOAD))
    assert result == Result(False, retryable, f"HTTP {status}")


async def test_webhook_receiver_down_is_retryable(http):
    url = f"http://127.0.0.1:{_free_port()}/hook"
    result = await WebhookChannel(WEBHOOK_SECRET, http).send(_push("webhook", url, payload=PAYLOAD))
    assert result == Result.retry("ConnectError")


# ---- e-mail --------------------------------------------------------------------------------------------

class Mailbox:
    """An aiosmtpd handler that keeps what it receives; `refuse` answers RCPT TO with that reply instead."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield mailbox, controller
    finally:
        controller.stop()


async def test_email_arrives_with_chinese_subject_and_push_message_id(smtp):
    mailbox, controller = smtp
    channel = EmailChannel(controller.hostname, controller.port, "leadflow@dealer.example")
    push = _push("email", "li.consultant@dealer.example")
    assert await channel.send(push) == Result.sent()
    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "leadflow@dealer.example"
    assert envelope.rcpt_tos == ["li.consultant@dealer.example"]
    msg = email.message_from_bytes(envelope.content, policy=email_policy.default)
    assert msg["Subject"] == push.title
    assert msg["Message-ID"] == f"<{push.push_id}@dealer.example>"
    text = msg.get_content()
    assert "意向车型：Model Y" in text and "https://app.test/tasks/task-1" in text


async def test_email_sent_twice_has_one_message_id(smtp):
    mailbox, controller = smtp
    channel = EmailChannel(controller.hostname, controller.port, "leadflow@dealer.example")
    push = _push("email", "li.consultant@dealer.example")
    await channel.send(push)
    await channel.send(push)
    ids = {email.message_from_bytes(e.content, policy=email_policy.default)["Message-ID"] for e in mailbox.envelopes}
    assert len(mailbox.envelopes) == 2 and len(ids) == 1


async def test_email_temporary_refusal_is_retryable(smtp):
    mailbox, controller = smtp
    mailbox.refuse = "451 4.3.0 Try again later"
    result = await EmailChannel(controller.hostname, controller.port, "leadflow@dealer.example").send(
        _push("email", "li.consultant@dealer.example"))
    assert result == Result.retry("recipient refused: 451")


async def test_email_permanent_refusal_is_not_retryable_and_names_nobody(smtp):
    mailbox, controller = smtp
    mailbox.refuse = "550 5.1.1 <li.consultant@dealer.example>: no such user"
    result = await EmailChannel(controller.hostname, controller.port, "leadflow@dealer.example").send(
        _push("email", "li.consultant@dealer.example"))
    assert result == Result.fail("recipient refused: 550")
    assert "li.consultant" not in result.detail


async def test_email_server_down_is_retryable():
    channel = EmailChannel("127.0.0.1", _free_port(), "leadflow@dealer.example", timeout_s=2)
    result = await channel.send(_push("email", "li.consultant@dealer.example"))
    assert (result.ok, result.retryable, result.detail) == (False, True, "ConnectionRefusedError")


async def test_email_starttls_unsupported_is_a_configuration_error(smtp):
    _, controller = smtp
    channel = EmailChannel(controller.hostname, controller.port, "leadflow@dealer.example", starttls=True)
    result = await channel.send(_push("email", "li.consultant@dealer.example"))
    assert (result.ok, result.retryable) == (False, False)
    assert result.detail.startswith("SMTPNotSupportedError")


# ---- inbox and wiring ----------------------------------------------------------------------------------

async def test_inbox_stores_the_push():
    stored: list[Push] = []

    async def store(push: Push) -> None:
        stored.append(push)

    push = _push("inbox", "consultant-7")
    assert await InboxChannel(store).send(push) == Result.sent()
    assert stored == [push]


async def test_inbox_store_errors_propagate():
    async def store(push: Push) -> None:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError, match="store down"):
        await InboxChannel(store).send(_push("inbox", "consultant-7"))


async def test_a_channel_refuses_another_channels_push(http):
    with pytest.raises(ValueError, match="webhook channel given a email push"):
        await WebhookChannel(WEBHOOK_SECRET, http).send(_push("email", "li@dealer.example"))
