"""Wire the notify service: its store, outbox, policy and delivery channels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.launcher import ServiceDefinition
from leadflow.sdk import EventProducer
from services.notify.adapters.channels import Channel, EmailChannel, InboxChannel, WebhookChannel, WeComChannel
from services.notify.adapters.pushes import PushOutbox
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.policy import NotifyPolicyBook, load_notify_policies
from services.notify.entrypoints import agents
from services.notify.handlers import LEASES, NotifyService
from leadflow.runtime.leases import PersonLeases
from services.notify.settings import NotifySettings


def _now() -> datetime:
    return datetime.now(UTC)


def channels_of(settings: NotifySettings | None, outbox: PushOutbox, clock: Callable[[], datetime] = _now) -> dict[str, Channel]:
    """The inbox always; WeCom, e-mail and the webhook when their settings are given."""
    channels: dict[str, Channel] = {
        "inbox": InboxChannel(lambda push: outbox.store_in_inbox(push, push.recipient, clock())),
    }
    if settings is None:
        return channels
    client = httpx.AsyncClient(timeout=10.0)
    if settings.wecom_corp_id and settings.wecom_secret and settings.wecom_agent_id is not None:
        channels["wecom"] = WeComChannel(settings.wecom_base_url, settings.wecom_corp_id,
                                         settings.wecom_secret.get_secret_value(), settings.wecom_agent_id, client)
    if settings.smtp_host:
        channels["email"] = EmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_sender,
                                         settings.smtp_username,
                                         settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                                         settings.smtp_starttls)
    if settings.webhook_secret:
        channels["webhook"] = WebhookChannel(settings.webhook_secret.get_secret_value().encode(), client)
    return channels


def make_service(db: AsyncDatabase, *, policies: NotifyPolicyBook | None = None, clock: Callable[[], datetime] = _now,
                 producer: EventProducer | None = None, topic_prefix: str = "", timer_batch: int = 200,
                 timer_interval_s: float = 30.0, settings: NotifySettings | None = None,
                 channels: dict[str, Channel] | None = None, atomic_store: bool = False) -> NotifyService:
    outbox = PushOutbox(db)
    return NotifyService(NotifyRepository(db), clock=clock, producer=producer, topic_prefix=topic_prefix,
                         policies=policies, timer_batch=timer_batch, timer_interval_s=timer_interval_s, outbox=outbox,
                         channels=channels if channels is not None else channels_of(settings, outbox, clock),
                         delivery_interval_s=settings.delivery_interval_s if settings else 2.0,
                         inbox_url=settings.inbox_url if settings else None, atomic_store=atomic_store)


def build(settings: NotifySettings, db: AsyncDatabase) -> NotifyService:
    return make_service(db, policies=load_notify_policies(settings.notify_policy_file),
                        timer_batch=settings.notify_timer_batch, timer_interval_s=settings.notify_timer_interval_s,
                        settings=settings, atomic_store=bool(settings.store_atomic_updates))


def build_for_api(db: AsyncDatabase, policy_file: Path | None, *, clock: Callable[[], datetime], producer: EventProducer,
                  topic_prefix: str, atomic_store: bool) -> NotifyService:
    """The API's side of notify: outcomes, claims, consultants and reads (the timer, agents and delivery
    are the worker's)."""
    return make_service(db, policies=load_notify_policies(policy_file), clock=clock, producer=producer,
                        topic_prefix=topic_prefix, channels={}, atomic_store=atomic_store)


DEFINITION = ServiceDefinition(
    name="notify",
    settings=NotifySettings,
    repositories=lambda db: [NotifyRepository(db), PushOutbox(db), PersonLeases(db, collection=LEASES)],
    build=build,
    register=agents.register,
)
