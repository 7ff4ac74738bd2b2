"""Scoring rules as YAML: the defaults load, bad files say which field is wrong, tenants get their own
rule set (built-in, a file, or inline extending another), and docs/scoring.md documents every field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from schemas.tasks import Outcome
from schemas.touchpoints import EventType
from services.scoring.domain.rules import BUILTIN_DIR, RuleSet, RulesError, builtin, load_book, parse_book, parse_rules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"


@pytest.mark.parametrize("name", ["car_dealer", "health"])
def test_the_defaults_load_and_weigh_the_strong_signals_most(name):
    rules = builtin(name)
    strongest = max(rules.signals, key=lambda e: rules.signals[e].weight)
    assert strongest is EventType.DEPOSIT_PAID
    assert all(rules.signals[e].weight < 0 for e in (EventType.UNSUBSCRIBED, EventType.COMPLAINT_FILED))
    assert rules.outcomes[Outcome.INVALID_NUMBER].weight < 0 and rules.outcomes[Outcome.LOST].weight < 0
    assert rules.repeat_inquiry is not None and rules.inactivity is not None


def test_health_rules_value_a_consultant_chat_more_than_cars_do():
    assert builtin("health").signals[EventType.CHAT_MESSAGE].weight > builtin("car_dealer").signals[EventType.CHAT_MESSAGE].weight


def _error(data, **kw) -> str:
    with pytest.raises(RulesError) as caught:
        parse_rules(data, origin="t.yaml", **kw)
    return str(caught.value)


@pytest.mark.parametrize("data, names", [
    ({"name": "x", "grades": {"H": 20, "A": 50, "B": 25}}, "grades"),
    ({"name": "x", "signals": {"page_viewed": {"label": "看", "weight": 5, "half_life_days": 0, "cap": 5}}},
     "signals.page_viewed.half_life_days"),
    ({"name": "x", "signals": {"page_viewd": {"label": "看", "weight": 5, "half_life_days": 1, "cap": 5}}},
     "signals.page_viewd"),
    ({"name": "x", "signals": {"page_viewed": {"label": "看", "weight": 5, "half_life_days": 1, "cap": -5}}},
     "signals.page_viewed"),
    ({"name": "x", "learning": {"labels": {"won": 2}}}, "learning.labels"),
    ({"name": "x", "emit": {"min_score_dleta": 3}}, "emit.min_score_dleta"),
    ({"grades": {}}, "name"),
])
def test_a_bad_field_is_named_with_the_file(data, names):
    message = _error(data)
    assert message.startswith("t.yaml: ") and names in message


def test_extends_merges_key_by_key():
    rules = parse_rules({"extends": "car_dealer", "name": "acme", "grades": {"H": 80},
                         "signals": {"page_viewed": {"label": "看车", "weight": 3, "half_life_days": 3, "cap": 9}}},
                        origin="t")
    car = builtin("car_dealer")
    assert (rules.grades.H, rules.grades.A) == (80, car.grades.A)
    assert rules.signals[EventType.PAGE_VIEWED].label == "看车"
    assert rules.signals[EventType.TEST_DRIVE_BOOKED] == car.signals[EventType.TEST_DRIVE_BOOKED]


def test_unknown_builtin_lists_the_ones_there_are():
    assert "car_dealer, health" in _error({"extends": "boats", "name": "x"})


def test_a_book_gives_each_tenant_its_rules(tmp_path):
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump({"extends": "car_dealer", "name": "acme", "version": 3}),
                                        encoding="utf-8")
    book_file = tmp_path / "book.yaml"
    book_file.write_text(yaml.safe_dump({"default": "car_dealer", "tenants": {
        "vita": "health", "acme": "acme.yaml", "inline": {"extends": "health", "name": "inline", "grades": {"H": 90}}}},
        allow_unicode=True), encoding="utf-8")
    book = load_book(book_file)
    assert book.for_tenant("vita").name == "health-consultative"
    assert book.for_tenant("acme").ref == "acme@3"
    assert book.for_tenant("inline").grades.H == 90
    assert book.for_tenant("anyone").name == "car-dealer"
    assert load_book(None).default.name == "car-dealer"


def test_a_bad_book_says_where(tmp_path):
    with pytest.raises(RulesError, match="unknown keys tenant"):
        parse_book({"tenant": {}})
    with pytest.raises(RulesError, match=r"tenants\.acme: grades"):
        parse_book({"tenants": {"acme": {"extends": "car_dealer", "name": "a", "grades": {"H": 1, "A": 2}}}})
    with pytest.raises(RulesError, match="cannot read"):
        load_book(tmp_path / "missing.yaml")


def test_the_defaults_are_documented_field_by_field():
    text = DOCS.read_text(encoding="utf-8")

    def fields(model: type[BaseModel]) -> set[str]:
        names = set(model.model_fields)
        for f in model.model_fields.values():
            for inner in (f.annotation, *getattr(f.annotation, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    names |= fields(inner)
        return names

    missing = sorted(name for name in fields(RuleSet) if not re.search(rf"`{re.escape(name)}`", text))
    assert not missing, f"docs/scoring.md does not document: {missing}"
    for path in BUILTIN_DIR.glob("*.yaml"):
        assert path.name in text
