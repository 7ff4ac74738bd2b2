"""Field cleaning for leads: pure functions from a touchpoint's attributes and identity findings to clean
fields, every change with a machine-readable reason and every problem as a code. No I/O, no clock.

`clean()` never raises on what a touchpoint carries: a field it cannot clean is left empty and
reported in `problems`, and the lead goes on. Names and phone numbers are never echoed in changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.identity import LinkedIdentifier, RejectedIdentifier
from services.leads.domain.cleaning.budget import BudgetResult, BudgetRules, format_budget, parse_budget
from services.leads.domain.cleaning.change import DISPLAYABLE_FIELDS, Change
from services.leads.domain.cleaning.names import NameResult, clean_name
from services.leads.domain.cleaning.phones import JUNK_FINDINGS, RISK_FINDINGS, PhoneFindings, phone_findings
from services.leads.domain.cleaning.places import PlaceResult, normalise_place, normalise_province
from services.leads.domain.cleaning.products import (
    CAR_CATALOGUE,
    DEFAULT_CATALOGUE,
    HEALTH_CATALOGUE,
    Catalogue,
    ProductResult,
)

__all__ = [
    "CAR_CATALOGUE", "DEFAULT_CATALOGUE", "HEALTH_CATALOGUE", "JUNK_FINDINGS", "RISK_FINDINGS",
    "BudgetResult", "BudgetRules", "Catalogue", "Change", "Cleaned", "NameResult", "PhoneFindings",
    "PlaceResult", "ProductResult", "clean", "clean_name", "format_budget", "normalise_place",
    "normalise_province", "parse_budget", "phone_findings",
]


@dataclass(frozen=True)
class Cleaned:
    name: str | None = None
    surname: str | None = None
    title_only: bool = False
    city: str | None = None
    province: str | None = None
    county: str | None = None
    product: str | None = None
    budget_low: int | None = None
    budget_high: int | None = None
    reachable: bool = False
    changes: tuple[Change, ...] = ()
    problems: tuple[str, ...] = ()  # unique, in the order found


def _text(value: Any) -> str | None:
    """A text attribute as text: numbers become text, anything else is not text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError


def clean(
    attributes: Mapping[str, Any] | Any,
    identifiers: Iterable[LinkedIdentifier] = (),
    rejected: Iterable[RejectedIdentifier] = (),
    *,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    budget_rules: BudgetRules = BudgetRules(),
) -> Cleaned:
    """Clean name, city/province, product (car_model first), budget and phone findings of one touchpoint."""
    if hasattr(attributes, "model_dump"):
        attributes = attributes.model_dump()
    if not isinstance(attributes, Mapping):
        attributes = {}
    changes: list[Change] = []
    problems: list[str] = []

    def text(field: str) -> str | None:
        try:
            return _text(attributes.get(field))
        except TypeError:
            problems.append(f"{field}_not_text")
            return None

    name = clean_name(text("name"))
    changes += name.changes
    if name.problem:
        problems.append(name.problem)

    place = normalise_place(text("city"), text("province"))
    changes += place.changes
    if place.problem:
        problems.append(place.problem)

    product = ProductResult(None)
    for field in ("car_model", "product"):
        raw = text(field)
        if raw is not None and raw.strip():
            product = catalogue.normalise(raw, field)
            changes += product.changes
            if product.problem:
                problems.append(product.problem)
            break

    raw_budget = attributes.get("budget")
    budget = parse_budget(raw_budget, budget_rules) if not isinstance(raw_budget, bool) else BudgetResult(None, None)
    changes += budget.changes
    if budget.problem:
        problems.append(budget.problem)

    phones = phone_findings(identifiers, rejected)
    problems += phones.reasons

    # Personal values never leave cleaning, whatever a rule recorded.
    changes = [c if c.field in DISPLAYABLE_FIELDS else Change(c.field, c.reason) for c in changes]
    return Cleaned(
        name=name.value, surname=name.surname, title_only=name.title_only,
        city=place.city, province=place.province, county=place.county,
        product=product.value, budget_low=budget.low, budget_high=budget.high,
        reachable=phones.reachable, changes=tuple(changes), problems=tuple(dict.fromkeys(problems)),
    )
