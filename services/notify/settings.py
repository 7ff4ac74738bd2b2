"""notify settings (LEADFLOW_* environment)."""

from pathlib import Path

from pydantic import SecretStr

from leadflow.runtime.settings import WorkerSettings


class NotifySettings(WorkerSettings):
    web_port: int = 6104
    # Triggers, routing, working hours, deadlines, escalation and the pool per tenant (TOML; docs/notify.md).
    notify_policy_file: Path | None = None
    notify_timer_interval_s: float = 30.0  # how often deadlines and the pool are checked
    notify_timer_batch: int = 200
    delivery_interval_s: float = 2.0  # how often pushes due are sent
    # Delivery channels; each is on only when configured. The inbox needs nothing.
    wecom_base_url: str = "https://qyapi.weixin.qq.com"
    wecom_corp_id: str | None = None
    wecom_secret: SecretStr | None = None
    wecom_agent_id: int | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "leadflow@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    webhook_secret: SecretStr | None = None
    inbox_url: str = "http://127.0.0.1:8000/inbox"  # the link in a push: the consultant's inbox page
