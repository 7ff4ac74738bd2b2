"""Pushes: the notifications of task versions to consultants (inbox, WeCom, e-mail, the tenant's webhook)
and the customer's acknowledgement. Queued in the outbox by the task use cases (`announce`,
`acknowledge`), sent by the delivery timer (`deliver`) with retries, quiet hours and an hourly limit."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from leadflow.runtime import metrics
from leadflow.runtime.messages import Handled
from leadflow.runtime.ownership import OVERFETCH, Owns, everything
from schemas.tasks import TaskCreated
from services.notify.adapters.channels import Channel
from services.notify.adapters.pushes import PushOutbox
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.delivery import (
    Delivery,
    DeliveryStatus,
    Push,
    Result,
    RetryPolicy,
    quiet_until,
    render_task_message,
)
from services.notify.domain.policy import NotifyPolicy, NotifyPolicyBook

log = logging.getLogger(__name__)

PERSONAL_CHANNELS = frozenset({"wecom", "email"})  # they buzz a consultant's phone: quiet hours and a rate limit apply


class Pusher:
    def __init__(self, repo: NotifyRepository, outbox: PushOutbox | None, policies: NotifyPolicyBook,
                 channels: dict[str, Channel], *, retry: RetryPolicy, clock: Callable[[], datetime],
                 inbox_url: str | None, batch: int) -> None:
        self.repo = repo
        self.owns: Owns = everything  # pushes this worker sends, by push id; one worker of several: its share
        self.outbox = outbox
        self.policies = policies
        self.channels = channels
        self.retry = retry
        self._clock = clock
        self.inbox_url = inbox_url
        self.batch = batch

    async def announce(self, policy: NotifyPolicy, task: dict[str, Any] | None, audience: list[str],
                        now: datetime) -> None:
        """Queue the pushes of this task version to these consultants on the tenant's channels (and once to
        its webhook). Idempotent: the push id names the task version, channel and person."""
        if self.outbox is None or task is None:
            return
        tenant, version = task["tenant_id"], task.get("version", 1)
        message = render_task_message(reason=task["reason"], grade=task["grade"], name=task.get("lead_name"),
                                      vehicle=task.get("product"), due_at=task["due_at"], now=now,
                                      tz=policy.hours.zone, score=task.get("score"), store=task.get("store_id"))
        url = f"{self.inbox_url}#task={task['_id']}" if self.inbox_url else None
        contacts = await self.repo.contacts_of(tenant, audience)
        for channel in policy.delivery.channels:
            if channel not in self.channels:
                continue  # on in the policy, not configured on this service: the inbox still has it
            if channel == "webhook":
                payload = {"type": "task", "tenant_id": tenant, "task_id": task["_id"], "version": version,
                           "consultant_id": task.get("consultant_id"), "grade": task["grade"], "reason": task["reason"],
                           "due_at": task["due_at"].isoformat(), "title": message.title}
                await self.outbox.enqueue(Push.of(tenant_id=tenant, task_id=task["_id"], task_version=version,
                                                  channel=channel, recipient=policy.delivery.webhook_url or "",
                                                  title=message.title, body=message.body, url=url, payload=payload),
                                          None, now)
                continue
            for consultant_id in audience:
                recipient = {"inbox": consultant_id, "wecom": contacts.get(consultant_id, {}).get("wecom_userid"),
                             "email": contacts.get(consultant_id, {}).get("email")}[channel]
                if recipient:
                    await self.outbox.enqueue(Push.of(tenant_id=tenant, task_id=task["_id"], task_version=version,
                                                      channel=channel, recipient=recipient, title=message.title,
                                                      body=message.body, url=url, audience=consultant_id),
                                              consultant_id, now)

    async def acknowledge(self, policy: NotifyPolicy, task: TaskCreated, source_channel: str | None,
                           now: datetime) -> None:
        """Tell the customer at once who will call and by when, through the system their touchpoint came from:
        a signed webhook naming the touchpoint (`event_id`) so that system replies on its channel (WeCom, SMS)."""
        assert self.outbox is not None and policy.delivery.acknowledge_url
        name = (await self.repo.contacts_of(task.tenant_id, [task.consultant_id or ""])).get(task.consultant_id or "", {}).get("name")
        due = task.due_at.astimezone(policy.hours.zone)
        text = f"您好，您的专属顾问{name or ''}将于{due.month}月{due.day}日 {due:%H:%M}前与您联系。"
        payload = {"type": "customer_ack", "tenant_id": task.tenant_id, "one_id": task.one_id,
                   "event_id": task.trigger_event_id, "channel": source_channel, "consultant_id": task.consultant_id,
                   "consultant_name": name, "call_by": task.due_at.isoformat(), "text": text}
        await self.outbox.enqueue(Push.of(tenant_id=task.tenant_id, task_id=task.task_id, task_version=1, channel="webhook",
                                          recipient=policy.delivery.acknowledge_url, title="客户回执", body=text,
                                          payload=payload, audience="customer_ack"), None, now)
        metrics.ACKNOWLEDGEMENTS.labels(task.tenant_id, source_channel or "unknown").inc()

    async def deliver(self, now: datetime | None = None) -> Handled:
        """Send the pushes that are due, each at most once per attempt: marked `sending` first, so a crash
        mid-send never sends it twice; failures retry with back-off, or give up, per the retry policy."""
        if self.outbox is None:
            return Handled()
        now = now or self._clock()
        due = (await self.outbox.due(now, self.batch * OVERFETCH, self.owns))[:self.batch]
        for doc in due:
            push = Push(doc["_id"], doc["tenant_id"], doc["task_id"], doc["task_version"], doc["channel"],
                        doc["recipient"], doc["title"], doc["body"], doc.get("url"), doc.get("payload") or {})
            channel = self.channels.get(push.channel)
            if push.channel in PERSONAL_CHANNELS and doc.get("consultant_id"):
                later = await self._not_now(push, doc["consultant_id"], now)
                if later is not None:
                    await self.outbox.defer(push, *later)
                    continue
            await self.outbox.mark_sending(push.push_id, now)
            if channel is None:
                result = Result.fail("channel not configured")
            else:
                try:
                    result = await channel.send(push)
                except Exception as exc:  # noqa: BLE001 - one broken push must not stop the others
                    log.warning("push %s on %s raised %s", push.push_id, push.channel, type(exc).__name__)
                    result = Result.retry(type(exc).__name__)
            delivery = Delivery(push.push_id, DeliveryStatus(doc["status"]), doc.get("attempts", 0),
                                doc.get("next_attempt_at")).after(result, self.retry, now, rand=random.random())
            await self.outbox.record(push, delivery, now)
            metrics.DELIVERIES.labels(push.tenant_id, push.channel, delivery.status.value).inc()
        return Handled()

    async def _not_now(self, push: Push, consultant_id: str, now: datetime) -> tuple[datetime, str] | None:
        """A consultant's own phone is not buzzed in quiet hours or beyond the hourly limit: (when, why)."""
        policy = self.policies.for_tenant(push.tenant_id).delivery
        until = quiet_until(now, policy.quiet_hours, self.policies.for_tenant(push.tenant_id).hours.zone)
        if until is not None:
            return until, "quiet_hours"
        if await self.outbox.sent_since(push.tenant_id, consultant_id, now - timedelta(hours=1)) >= policy.max_per_hour:
            return now + timedelta(minutes=5), "rate_limit"
        return None

    async def inbox(self, tenant_id: str, consultant_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return await self.outbox.inbox_of(tenant_id, consultant_id, limit) if self.outbox else []

    async def pushes_of(self, tenant_id: str, task_id: str) -> list[dict[str, Any]]:
        return await self.outbox.of_task(tenant_id, task_id) if self.outbox else []
