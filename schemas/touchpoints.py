"""Touchpoints: what upstream systems publish to `touchpoints.raw` (schema_version 1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from schemas.base import Event

SCHEMA_VERSION = 1
MAX_IDENTIFIERS = 50
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_DEPTH = 5
MAX_ATTRIBUTES_CHARS = 32_000
MAX_CLOCK_SKEW = timedelta(hours=1)


def _depth(value: Any, level: int = 0) -> int:
    """How deep dicts and lists nest (stops counting past the limit)."""
    if level > MAX_ATTRIBUTE_DEPTH or not isinstance(value, dict | list):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level + 1)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
TenantId = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
]
EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class EventType(StrEnum):
    PAGE_VIEWED = "page_viewed"
    CONTENT_ENGAGED = "content_engaged"
    WECHAT_FOLLOWED = "wechat_followed"
    WECHAT_UNFOLLOWED = "wechat_unfollowed"
    WECOM_CONTACT_ADDED = "wecom_contact_added"
    FORM_SUBMITTED = "form_submitted"
    CHAT_MESSAGE = "chat_message"
    CALL_LOGGED = "call_logged"
    PRICE_INQUIRED = "price_inquired"
    TEST_DRIVE_BOOKED = "test_drive_booked"
    STORE_VISITED = "store_visited"
    QUOTE_REQUESTED = "quote_requested"
    DEPOSIT_PAID = "deposit_paid"
    ORDER_PLACED = "order_placed"
    PURCHASE_COMPLETED = "purchase_completed"
    SERVICE_VISITED = "service_visited"
    REFERRAL_MADE = "referral_made"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINT_FILED = "complaint_filed"


class IdentifierType(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    WECHAT_UNIONID = "wechat_unionid"
    WECHAT_OPENID = "wechat_openid"
    DOUYIN_ID = "douyin_id"
    DEVICE_ID = "device_id"
    CRM_ID = "crm_id"
    MEMBER_ID = "member_id"
    VIN = "vin"


class Source(BaseModel):
    """Where the touchpoint happened."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    system: Name
    channel: Name
    campaign_id: Name | None = None
    store_id: Name | None = None
    ip: Annotated[str, StringConstraints(max_length=64)] | None = None
    user_agent: Annotated[str, StringConstraints(max_length=512)] | None = None


class Identifier(BaseModel):
    """One identifier of the person behind the touchpoint, as the upstream system spelled it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    type: IdentifierType
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    namespace: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None

    @model_validator(mode="after")
    def _openid_needs_namespace(self) -> "Identifier":
        # An openid is only unique within one WeChat app; without the app id it could glue strangers.
        if self.type is IdentifierType.WECHAT_OPENID and not self.namespace:
            raise PydanticCustomError(
                "namespace_required", "wechat_openid needs its namespace (the WeChat app id)"
            )
        return self


# ---- attributes, validated per event type ------------------------------------------------------


class Attributes(BaseModel):
    """Attributes any touchpoint may carry; unknown extra attributes are kept as they are."""

    model_config = ConfigDict(frozen=True, extra="allow", str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(max_length=128)] | None = None
    city: Annotated[str, StringConstraints(max_length=64)] | None = None
    # Profile fields a form may collect; identity matches persons on them when no identifier links them.
    birth_date: date | None = None
    address: Annotated[str, StringConstraints(max_length=256)] | None = None
    product: Annotated[str, StringConstraints(max_length=128)] | None = None
    car_model: Annotated[str, StringConstraints(max_length=128)] | None = None
    budget: Annotated[str, StringConstraints(max_length=64)] | None = None
    duration_s: Annotated[float, Field(ge=0, le=86_400)] | None = None


class ContentEngagedAttributes(Attributes):
    action: Literal["like", "comment", "share", "watch", "favorite"]
    content_id: Annotated[str, StringConstraints(max_length=128)] | None = None


class CallLoggedAttributes(Attributes):
    direction: Literal["inbound", "outbound"]
    duration_s: Annotated[float, Field(ge=0, le=86_400)]
    connected: bool


class FormSubmittedAttributes(Attributes):
    form_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    # Seconds from first keystroke to submit: the clearest bot signal a form can give.
    fill_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None


class MoneyAttributes(Attributes):
    amount: Annotated[float, Field(ge=0)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    order_id: Annotated[str, StringConstraints(max_length=128)] | None = None


class ReferralAttributes(Attributes):
    referrer_phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    referrer_one_id: Annotated[str, StringConstraints(max_length=64)] | None = None


ATTRIBUTE_MODELS: dict[EventType, type[Attributes]] = {
    EventType.CONTENT_ENGAGED: ContentEngagedAttributes,
    EventType.CALL_LOGGED: CallLoggedAttributes,
    EventType.FORM_SUBMITTED: FormSubmittedAttributes,
    EventType.DEPOSIT_PAID: MoneyAttributes,
    EventType.ORDER_PLACED: MoneyAttributes,
    EventType.PURCHASE_COMPLETED: MoneyAttributes,
    EventType.REFERRAL_MADE: ReferralAttributes,
}


class TouchpointReceived(Event):
    """A touchpoint as published upstream: the envelope plus type-specific attributes."""

    event_id: EventId
    event_type: EventType
    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: AwareDatetime
    tenant_id: TenantId
    source: Source
    identifiers: Annotated[list[Identifier], Field(max_length=MAX_IDENTIFIERS)] = []
    attributes: dict[str, Any] = {}

    @field_validator("occurred_at")
    @classmethod
    def _not_absurd(cls, value: datetime) -> datetime:
        if value.year < 2000:
            raise PydanticCustomError("occurred_at_range", "occurred_at must not lie before 2000")
        # A clock far ahead is a broken upstream clock; an hour's skew is tolerated.
        if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise PydanticCustomError("occurred_at_future", "occurred_at must not lie more than an hour ahead")
        return value

    @field_validator("attributes")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_ATTRIBUTES:
            raise PydanticCustomError("attributes_too_many", f"at most {MAX_ATTRIBUTES} attributes")
        if _depth(value) > MAX_ATTRIBUTE_DEPTH:
            raise PydanticCustomError("attributes_too_deep", f"attributes nest at most {MAX_ATTRIBUTE_DEPTH} levels")
        if len(str(value)) > MAX_ATTRIBUTES_CHARS:
            raise PydanticCustomError("attributes_too_large", f"attributes hold at most {MAX_ATTRIBUTES_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _validate_attributes(self) -> "TouchpointReceived":
        model = ATTRIBUTE_MODELS.get(self.event_type, Attributes)
        try:
            model.model_validate(self.attributes)
        except ValidationError as exc:
            # Re-anchor the errors under `attributes` so callers see e.g. attributes.duration_s.
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(e["type"], e["msg"]),
                        loc=("attributes", *e["loc"]),
                        input=e["input"],
                    )
                    for e in exc.errors()
                ],
            ) from None
        return self

    def typed_attributes(self) -> Attributes:
        return ATTRIBUTE_MODELS.get(self.event_type, Attributes).model_validate(self.attributes)
