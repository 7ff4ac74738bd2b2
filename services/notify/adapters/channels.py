"""Delivery channels for task pushes, behind one interface (`Channel`): WeCom application messages,
signed webhooks, e-mail over SMTP and the in-app inbox. Each sends a push once and says how it went
(`Result`: sent, failed for now, failed for good); retries and back-off are `domain/delivery.py`'s.

Details never carry the recipient, the message text or a credential: HTTP errors are described by their
class and status, never by their URL (WeCom URLs carry the corp secret or the access token), and server
messages go through `redact`.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol, runtime_checkable

import httpx

from services.notify.domain.delivery import (
    PUSH_ID_HEADER,
    SIGNATURE_HEADER,
    Push,
    Result,
    clip_utf8,
    redact,
    signature_header,
)


@runtime_checkable
class Channel(Protocol):
    name: str

    async def send(self, push: Push) -> Result: ...


def _check(channel: Channel, push: Push) -> None:
    # A push handed to the wrong channel is a wiring bug, not a delivery failure: stop, do not record it.
    if push.channel != channel.name:
        raise ValueError(f"{channel.name} channel given a {push.channel} push")


def _http_status(prefix: str, status: int) -> Result:
    """An HTTP error status as a result: rate limits and server errors pass, other client errors do not."""
    detail = f"{prefix}HTTP {status}"
    return Result.retry(detail) if status == 429 or status >= 500 else Result.fail(detail)


# ---- WeCom ---------------------------------------------------------------------------------------------

WECOM_TOKEN_ERRCODES = frozenset({40014, 42001})  # invalid / expired access_token: refresh once and resend
WECOM_RETRYABLE_ERRCODES = frozenset({-1, 45009})  # system busy, API rate limit
WECOM_TITLE_BYTES = 128  # textcard limits, in UTF-8 bytes
WECOM_DESCRIPTION_BYTES = 512
WECOM_TEXT_BYTES = 2048
TOKEN_MARGIN_S = 60.0  # refresh a little before WeCom's expiry, so a token never dies in flight


@dataclass
class _Token:
    value: str
    expires_at: float  # on the channel's monotonic clock


class WeComChannel:
    """WeCom (企业微信) application messages: a textcard with a 详情 button when the push has a URL,
    plain text otherwise. The access token is fetched once and cached until shortly before it expires;
    a token WeCom rejects (40014, 42001) is refreshed once and the message sent again."""

    name = "wecom"

    def __init__(self, base_url: str, corp_id: str, secret: str, agent_id: int, client: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self.client = client
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()  # one token fetch at a time, not one per concurrent push

    def __repr__(self) -> str:
        return f"WeComChannel({self.base_url!r}, corp_id={self.corp_id!r}, agent_id={self.agent_id})"

    async def send(self, push: Push) -> Result:
        _check(self, push)
        body = self._message(push)
        for refreshed in (False, True):
            token = await self._access_token()
            if isinstance(token, Result):
                return token
            result, errcode = await self._post(token, body)
            if errcode in WECOM_TOKEN_ERRCODES:
                self._forget(token)
                if not refreshed:
                    continue
                return Result.retry(result.detail)  # a fresh token rejected too: WeCom's side, try later
            return result
        raise AssertionError("unreachable")

    def _message(self, push: Push) -> dict[str, Any]:
        if push.url is None:
            content = clip_utf8(f"{push.title}\n{push.body}", WECOM_TEXT_BYTES)
            return {"touser": push.recipient, "msgtype": "text", "agentid": self.agent_id, "text": {"content": content}}
        return {
            "touser": push.recipient, "msgtype": "textcard", "agentid": self.agent_id,
            "textcard": {
                "title": clip_utf8(push.title, WECOM_TITLE_BYTES),
                "description": clip_utf8(push.body, WECOM_DESCRIPTION_BYTES),
                "url": push.url,
                "btntxt": "详情",
            },
        }

    async def _access_token(self) -> str | Result:
        async with self._lock:
            if self._token is not None and self._clock() < self._token.expires_at:
                return self._token.value
            fetched_at = self._clock()
            try:
                response = await self.client.get(f"{self.base_url}/cgi-bin/gettoken",
                                                  params={"corpid": self.corp_id, "corpsecret": self._secret})
            except httpx.TransportError as exc:
                return Result.retry(f"gettoken: {type(exc).__name__}")
            if response.status_code != 200:
                return _http_status("gettoken: ", response.status_code)
            data = _json(response)
            if data is None:
                return Result.retry("gettoken: not JSON")
            errcode = data.get("errcode", 0)
            if errcode != 0 or not data.get("access_token"):
                detail = f"gettoken: errcode {errcode}: {redact(str(data.get('errmsg', '')))}"
                # A wrong corp id or secret stays wrong; only a busy WeCom is worth waiting for.
                return Result.retry(detail) if errcode in WECOM_RETRYABLE_ERRCODES else Result.fail(detail)
            lifetime = float(data.get("expires_in", 7200))
            self._token = _Token(data["access_token"], fetched_at + max(0.0, lifetime - TOKEN_MARGIN_S))
            return self._token.value

    def _forget(self, token: str) -> None:
        # Only the token that was rejected: a concurrent send may have fetched a new one already.
        if self._token is not None and self._token.value == token:
            self._token = None

    async def _post(self, token: str, body: dict[str, Any]) -> tuple[Result, int | None]:
        try:
            response = await self.client.post(f"{self.base_url}/cgi-bin/message/send",
                                               params={"access_token": token}, json=body)
        except httpx.TransportError as exc:
            return Result.retry(type(exc).__name__), None
        if response.status_code != 200:
            return _http_status("", response.status_code), None
        data = _json(response)
        if data is None:
            return Result.retry("not JSON"), None
        errcode = data.get("errcode")
        if not isinstance(errcode, int):
            return Result.retry("no errcode"), None
        detail = f"errcode {errcode}: {redact(str(data.get('errmsg', '')))}"
        if errcode == 0:
            # errcode 0 with `invaliduser` set: accepted, but the user does not exist or left the corp.
            if data.get("invaliduser"):
                return Result.fail("invalid user"), 0
            return Result.sent(f"msgid {data.get('msgid', '')}".strip()), 0
        if errcode in WECOM_RETRYABLE_ERRCODES:
            return Result.retry(detail), errcode
        return Result.fail(detail), errcode


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# ---- webhook -------------------------------------------------------------------------------------------

class WebhookChannel:
    """POSTs the push's payload as JSON to its recipient URL, signed with the tenant's secret
    (`X-Leadflow-Signature: t=…,v1=…`) and named by `X-Leadflow-Push-Id`, so a receiver can check where it
    came from and drop a push it has seen. The signature covers the exact bytes sent."""

    name = "webhook"

    def __init__(self, secret: bytes, client: httpx.AsyncClient, *, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("webhook secret: not empty")
        self._secret = secret
        self.client = client
        self._clock = clock

    def __repr__(self) -> str:
        return "WebhookChannel()"

    async def send(self, push: Push) -> Result:
        _check(self, push)
        body = json.dumps(dict(push.payload), ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                          default=str).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: signature_header(self._secret, int(self._clock()), body),
            PUSH_ID_HEADER: push.push_id,
        }
        try:
            response = await self.client.post(push.recipient, content=body, headers=headers)
        except httpx.TransportError as exc:
            return Result.retry(type(exc).__name__)
        except httpx.InvalidURL:
            return Result.fail("invalid URL")
        if 200 <= response.status_code < 300:
            return Result.sent(f"HTTP {response.status_code}")
        return _http_status("", response.status_code)


# ---- e-mail --------------------------------------------------------------------------------------------

class EmailChannel:
    """Plain-text e-mail over SMTP, with the stdlib client in a worker thread. The Message-ID is made of
    the push id, so a push sent twice (a retry after a lost reply) is recognisable as one message."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, username: str | None = None, password: str | None = None,
                 starttls: bool = False, *, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"EmailChannel({self.host!r}, {self.port}, starttls={self.starttls})"

    def message(self, push: Push) -> EmailMessage:
        """The e-mail a push becomes."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = push.recipient
        msg["Subject"] = push.title
        msg["Date"] = formatdate(usegmt=True)
        domain = self.sender.rpartition("@")[2] or "leadflow.invalid"
        msg["Message-ID"] = f"<{push.push_id}@{domain}>"
        text = push.body if push.url is None else f"{push.body}\n\n详情：{push.url}"
        # base64: arrives intact through relays that do not speak 8BITMIME.
        msg.set_content(text, charset="utf-8", cte="base64")
        return msg

    async def send(self, push: Push) -> Result:
        _check(self, push)
        return await asyncio.to_thread(self._send, self.message(push))

    def _send(self, msg: EmailMessage) -> Result:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "recipient refused: " + ", ".join(str(c) for c in codes)
            return Result.retry(detail) if codes and all(400 <= c < 500 for c in codes) else Result.fail(detail)
        except smtplib.SMTPResponseException as exc:
            return _smtp_reply(exc)
        except smtplib.SMTPServerDisconnected:
            return Result.retry("server disconnected")
        except smtplib.SMTPException as exc:  # no STARTTLS, no usable AUTH: configuration, not weather
            return Result.fail(f"{type(exc).__name__}: {redact(str(exc))}")
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake
            return Result.retry(type(exc).__name__)
        return Result.sent()


def _smtp_reply(exc: smtplib.SMTPResponseException) -> Result:
    message = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    detail = f"{type(exc).__name__} {exc.smtp_code}: {redact(message)}"
    return Result.retry(detail) if 400 <= exc.smtp_code < 500 else Result.fail(detail)


# ---- in-app inbox --------------------------------------------------------------------------------------

class InboxChannel:
    """The in-app inbox: storing the push is delivering it. A store that raises is not a failed delivery
    but a failed write, so the error propagates instead of being turned into a result."""

    name = "inbox"

    def __init__(self, store: Callable[[Push], Awaitable[None]]) -> None:
        self._store = store

    async def send(self, push: Push) -> Result:
        _check(self, push)
        await self._store(push)
        return Result.sent()
