"""Schema evolution: today's models read everything their released versions accepted."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from schemas.compat import incompatibilities
from schemas.export import JSON_DIR
from schemas.topics import TOPICS

RELEASED = JSON_DIR / "released"
EXAMPLES = Path(JSON_DIR).parent / "examples"
MODELS = {spec.value.__name__: spec.value for spec in TOPICS}


def released_files() -> list[Path]:
    return sorted(RELEASED.glob("*.json"))


def test_every_topic_model_has_a_released_schema_and_examples():
    released = {p.name.split(".")[0] for p in released_files()}
    assert set(MODELS) <= released
    for name in MODELS:
        assert list((EXAMPLES / name).glob("v*.json")), f"no committed example of {name}"


@pytest.mark.parametrize("path", released_files(), ids=lambda p: p.name)
def test_current_models_accept_what_released_versions_accepted(path: Path):
    model = MODELS[path.name.split(".")[0]]
    problems = incompatibilities(json.loads(path.read_text(encoding="utf-8")), model.model_json_schema())
    assert problems == [], f"{model.__name__} broke backward compatibility: {problems}"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/v*.json")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_consumers_read_every_committed_example(path: Path):
    model = MODELS[path.parent.name]
    decoded = model.from_bytes(path.read_bytes())
    assert decoded is not None


# ---- the checker itself ---------------------------------------------------------------------------
BASE = {
    "type": "object", "additionalProperties": False, "required": ["a", "kind"],
    "properties": {
        "a": {"type": "string"},
        "kind": {"$ref": "#/$defs/Kind"},
        "n": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "$defs": {"Kind": {"enum": ["x", "y"], "type": "string"}},
}


def changed(edit) -> dict:
    schema = copy.deepcopy(BASE)
    edit(schema)
    return schema


def test_an_unchanged_schema_is_compatible():
    assert incompatibilities(BASE, copy.deepcopy(BASE)) == []


def test_additions_are_compatible():
    def add(s):
        s["properties"]["b"] = {"type": "string", "default": ""}
        s["$defs"]["Kind"]["enum"].append("z")
        s["properties"]["n"]["anyOf"].append({"type": "string"})
    assert incompatibilities(BASE, changed(add)) == []


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s["properties"].pop("a"), "$.a: removed"),
    (lambda s: s["properties"]["a"].update(type="integer"), "$.a: type string became integer"),
    (lambda s: (s["properties"].update(b={"type": "string"}), s["required"].append("b")), "$.b: newly required"),
    (lambda s: s["$defs"]["Kind"]["enum"].remove("y"), "$.kind: enum values dropped: ['y']"),
    (lambda s: s["properties"]["n"]["anyOf"].pop(1), "$.n: no longer accepts null"),
    (lambda s: s["properties"]["items"]["items"].update(type="integer"), "$.items[]: type string became integer"),
])
def test_breaking_changes_are_named(edit, expected):
    assert expected in incompatibilities(BASE, changed(edit))
