"""The event contract: touchpoint validation, committed JSON Schemas, the topic registry and API key specs."""

from __future__ import annotations

import json

from pydantic import RootModel
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.base import Event
from schemas.export import JSON_DIR, rendered
from schemas.topics import ALL_TOPICS, DEAD_LETTER_TOPICS, TOPICS, dead_letter_topic
from schemas.touchpoints import (
    CallLoggedAttributes,
    EventType,
    FormSubmittedAttributes,
    TouchpointReceived,
)
from services.gateway.auth import KeyFormatError, Principal, Role, digest, parse_api_keys

T0 = datetime(2025, 5, 20, 12, 0, tzinfo=timezone.utc)


def envelope(**overrides) -> dict:
    base = {
        "event_id": "e-1",
        "event_type": "page_viewed",
        "occurred_at": T0,
        "tenant_id": "demo",
        "source": {"system": "web", "channel": "site"},
    }
    return {**base, **overrides}


def errors(**overrides) -> set[tuple[str, tuple]]:
    with pytest.raises(ValidationError) as info:
        TouchpointReceived(**envelope(**overrides))
    return {(e["type"], tuple(e["loc"])) for e in info.value.errors()}


# ---- TouchpointReceived ----------------------------------------------------------------------------


def test_minimal_touchpoint_is_valid():
    tp = TouchpointReceived(**envelope())
    assert tp.event_type is EventType.PAGE_VIEWED and tp.schema_version == 1
    assert tp.identifiers == [] and tp.attributes == {}


def test_touchpoint_round_trips_through_bytes():
    tp = TouchpointReceived(**envelope(
        event_type="call_logged",
        identifiers=[{"type": "phone", "value": "13800001111"}],
        attributes={"direction": "inbound", "duration_s": 12.5, "connected": True, "utm": "x"},
    ))
    assert TouchpointReceived.from_bytes(tp.to_bytes()) == tp


def test_call_logged_attribute_errors_are_located_under_attributes():
    assert errors(event_type="call_logged", attributes={"direction": "sideways", "duration_s": -1}) == {
        ("literal_error", ("attributes", "direction")),
        ("greater_than_equal", ("attributes", "duration_s")),
        ("missing", ("attributes", "connected")),
    }


def test_content_engaged_needs_a_known_action():
    assert errors(event_type="content_engaged", attributes={"action": "poke"}) == {
        ("literal_error", ("attributes", "action"))
    }


def test_money_attributes_are_checked_on_deposit():
    assert errors(event_type="deposit_paid", attributes={"amount": -1, "currency": "rmb"}) == {
        ("greater_than_equal", ("attributes", "amount")),
        ("string_pattern_mismatch", ("attributes", "currency")),
    }


def test_generic_attributes_apply_to_every_type():
    assert errors(attributes={"duration_s": 100_000}) == {("less_than_equal", ("attributes", "duration_s"))}


def test_form_fill_seconds_must_be_non_negative():
    assert errors(event_type="form_submitted", attributes={"fill_seconds": -0.5}) == {
        ("greater_than_equal", ("attributes", "fill_seconds"))
    }


def test_unknown_attributes_are_kept():
    tp = TouchpointReceived(**envelope(attributes={"utm_source": "douyin"}))
    assert tp.attributes == {"utm_source": "douyin"}
    assert tp.typed_attributes().model_extra == {"utm_source": "douyin"}


def test_typed_attributes_use_the_model_of_the_event_type():
    tp = TouchpointReceived(**envelope(event_type="call_logged", attributes={"direction": "outbound", "duration_s": 5, "connected": False}))
    assert isinstance(tp.typed_attributes(), CallLoggedAttributes)
    form = TouchpointReceived(**envelope(event_type="form_submitted", attributes={"fill_seconds": 9}))
    assert isinstance(form.typed_attributes(), FormSubmittedAttributes)
    assert form.typed_attributes().fill_seconds == 9.0


def test_openid_without_namespace_is_rejected():
    assert errors(identifiers=[{"type": "wechat_openid", "value": "o1"}]) == {("namespace_required", ("identifiers", 0))}


def test_openid_with_namespace_is_accepted():
    tp = TouchpointReceived(**envelope(identifiers=[{"type": "wechat_openid", "value": "o1", "namespace": "wx-app"}]))
    assert tp.identifiers[0].namespace == "wx-app"


@pytest.mark.parametrize("naive", [datetime(2025, 5, 20, 12, 0), "2025-05-20T12:00:00"])
def test_occurred_at_must_be_timezone_aware(naive):
    assert errors(occurred_at=naive) == {("timezone_aware", ("occurred_at",))}


def test_occurred_at_in_another_zone_is_accepted():
    cst = timezone(timedelta(hours=8))
    tp = TouchpointReceived(**envelope(occurred_at=datetime(2025, 5, 20, 20, 0, tzinfo=cst)))
    assert tp.occurred_at == T0


def test_occurred_at_before_2000_is_rejected():
    assert errors(occurred_at=datetime(1999, 12, 31, tzinfo=timezone.utc)) == {("occurred_at_range", ("occurred_at",))}


@pytest.mark.parametrize("ahead", [timedelta(hours=2), timedelta(days=3650)])
def test_occurred_at_far_ahead_is_rejected(ahead):
    future = datetime.now(timezone.utc) + ahead
    assert errors(occurred_at=future) == {("occurred_at_future", ("occurred_at",))}


def test_an_upstream_clock_a_little_ahead_is_tolerated():
    assert TouchpointReceived(**envelope(occurred_at=datetime.now(timezone.utc) + timedelta(minutes=30)))


@pytest.mark.parametrize("attributes, kind", [
    ({f"k{i}": i for i in range(101)}, "attributes_too_many"),
    ({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "attributes_too_deep"),
    ({"a": [[[[[[1]]]]]]}, "attributes_too_deep"),
    ({"note": "字" * 32_001}, "attributes_too_large"),
])
def test_unbounded_attributes_are_rejected(attributes, kind):
    assert errors(attributes=attributes) == {(kind, ("attributes",))}


def test_attributes_within_bounds_are_accepted():
    assert TouchpointReceived(**envelope(attributes={"a": {"b": {"c": {"d": 1}}}, "note": "字" * 1000}))


def test_unknown_event_type_is_rejected():
    assert errors(event_type="page_teleported") == {("enum", ("event_type",))}


def test_event_id_longer_than_128_is_rejected():
    assert errors(event_id="x" * 129) == {("string_too_long", ("event_id",))}
    assert TouchpointReceived(**envelope(event_id="x" * 128)).event_id == "x" * 128


def test_unknown_envelope_fields_are_rejected():
    assert errors(priority="high") == {("extra_forbidden", ("priority",))}


def test_bad_tenant_id_is_rejected():
    assert errors(tenant_id="-demo") == {("string_pattern_mismatch", ("tenant_id",))}


def test_touchpoints_are_immutable():
    tp = TouchpointReceived(**envelope())
    with pytest.raises(ValidationError):
        tp.event_id = "e-2"


# ---- JSON Schema exports ---------------------------------------------------------------------------


def test_committed_json_schemas_match_the_models():
    files = rendered()
    committed = {p.name for p in JSON_DIR.glob("*.json")}
    assert set(files) == committed
    for name, text in files.items():
        assert (JSON_DIR / name).read_text(encoding="utf-8") == text, f"schemas/json/{name} drifted: run python -m schemas.export"


def test_rendered_schemas_carry_their_topic_metadata():
    for spec in TOPICS:
        schema = json.loads(rendered()[f"{spec.value.__name__}.v1.json"])
        assert schema["x-topic"] == spec.name
        assert schema["x-writer"] == spec.writer
        assert schema["$id"] == f"leadflow/{spec.name}/{spec.value.__name__}.v1.json"


# ---- topic registry --------------------------------------------------------------------------------


def test_every_topic_has_a_value_model_and_a_writer():
    for spec in TOPICS:
        assert isinstance(spec.value, type) and issubclass(spec.value, Event | RootModel), spec.name
        assert callable(getattr(spec.value, "from_bytes", None)), spec.name
        assert spec.writer, spec.name
        assert spec.key, spec.name


def test_topic_names_are_unique():
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))


def test_value_models_are_unique_per_topic():
    models = [t.value for t in TOPICS]
    assert len(models) == len(set(models))


def test_dead_letter_topic_exists_for_every_consumer_of_every_topic():
    expected = {f"{t.name}.{c}.dlq" for t in TOPICS for c in t.consumers}
    assert expected == {d.name for d in DEAD_LETTER_TOPICS}
    assert {"touchpoints.raw.identity.dlq", "touchpoints.identified.leads.dlq",
            "leads.changes.scoring.dlq", "scores.changes.notify.dlq"} <= expected
    for dlq in DEAD_LETTER_TOPICS:
        assert dlq.value is None and dlq.partitions == 1 and dlq.consumers == ()


def test_dead_letter_writer_is_its_consumer():
    for t in TOPICS:
        for c in t.consumers:
            assert dead_letter_topic(t, c).writer == c


def test_dead_letter_topic_of_a_non_consumer_is_refused():
    raw = next(t for t in TOPICS if t.name == "touchpoints.raw")
    with pytest.raises(ValueError):
        dead_letter_topic(raw, "notify")


def test_qualified_name_uses_the_prefix():
    assert TOPICS[0].qualified("t1.") == "t1." + TOPICS[0].name
    assert TOPICS[0].qualified() == TOPICS[0].name


# ---- API keys --------------------------------------------------------------------------------------


def test_parse_api_keys():
    keys = parse_api_keys("k1234567=demo:admin,k7654321=demo:consultant:c-1")
    assert keys == {
        digest("k1234567"): Principal("demo", Role.ADMIN, None, digest("k1234567")),
        digest("k7654321"): Principal("demo", Role.CONSULTANT, "c-1", digest("k7654321")),
    }
    assert "k1234567" not in keys  # only digests are kept


def test_parse_api_keys_tolerates_blanks_and_empty_input():
    assert parse_api_keys("") == {}
    key = digest("k1234567")
    assert parse_api_keys(" k1234567=demo:ingest , ,") == {key: Principal("demo", Role.INGEST, None, key)}
    assert parse_api_keys("k1234567=demo:ops:") == {key: Principal("demo", Role.OPS, None, key)}


@pytest.mark.parametrize(
    "spec",
    [
        "k1234567",  # no '='
        "k123456=demo:admin",  # key shorter than 8
        "k1234567=demo",  # no role
        "k1234567=:admin",  # no tenant
        "k1234567=demo:consultant:c-1:extra",  # too many parts
        "k1234567=demo:admin,broken",
    ],
)
def test_malformed_api_key_specs_are_refused(spec):
    with pytest.raises(KeyFormatError):
        parse_api_keys(spec)


@pytest.mark.parametrize("role", ["root", "Admin", ""])
def test_unknown_roles_are_refused(role):
    with pytest.raises(KeyFormatError):
        parse_api_keys(f"k1234567=demo:{role}")


def test_key_format_error_does_not_echo_the_key():
    with pytest.raises(KeyFormatError) as info:
        parse_api_keys("secretkey123=demo:root")
    assert "secretkey123" not in str(info.value)
