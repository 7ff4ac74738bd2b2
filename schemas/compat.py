"""Backward compatibility of event schemas: can today's models read what earlier versions wrote?

`schemas/json/released/` holds the JSON Schema of every event model as it was released; those files
are never edited. `incompatibilities(released, current)` lists every change that would make the
current model refuse a message the released one accepted: a field removed or retyped, a new
required field, an enum value or a union member dropped, a changed constant or format.
(New optional fields, new enum values and new union members are fine.)
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _resolve(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root.get("$defs", {})[name]
    return schema


def _alternatives(schema: Schema, root: Schema) -> list[Schema]:
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [alt for option in schema[key] for alt in _alternatives(option, root)]
    return [schema]


def _accepts(new: Schema, new_root: Schema, old: Schema, old_root: Schema, path: str) -> list[str]:
    """What `old` accepts that `new` refuses; empty when `new` reads everything `old` did."""
    olds, news = _alternatives(old, old_root), _alternatives(new, new_root)
    if len(olds) > 1 or len(news) > 1:
        problems = []
        for alt in olds:
            if all(_accepts(n, new_root, alt, old_root, path) for n in news):
                problems.append(f"{path}: no longer accepts {alt.get('type') or alt.get('const') or alt.get('title')}")
        return problems
    o, n = olds[0], news[0]
    if not n or not o:  # an empty schema accepts anything
        return [] if not n else [f"{path}: was unconstrained, is now constrained"]
    problems: list[str] = []
    if "type" in o and "type" in n and o["type"] != n["type"] and not (o["type"] == "integer" and n["type"] == "number"):
        return [f"{path}: type {o['type']} became {n['type']}"]
    for key in ("const", "format"):
        if key in n and n.get(key) != o.get(key):
            problems.append(f"{path}: {key} {o.get(key)!r} became {n[key]!r}")
    if "enum" in n:
        dropped = set(o.get("enum", ())) - set(n["enum"])
        if dropped or "enum" not in o:
            problems.append(f"{path}: enum values dropped: {sorted(map(str, dropped)) or 'any'}")
    if o.get("type") == "array" or "items" in o:
        problems += _accepts(n.get("items", {}), new_root, o.get("items", {}), old_root, f"{path}[]")
    if o.get("type") == "object" or "properties" in o:
        old_props, new_props = o.get("properties", {}), n.get("properties", {})
        for name, old_field in old_props.items():
            if name not in new_props:
                if n.get("additionalProperties") is False:
                    problems.append(f"{path}.{name}: removed")
                continue
            problems += _accepts(new_props[name], new_root, old_field, old_root, f"{path}.{name}")
        for name in sorted(set(n.get("required", ())) - set(o.get("required", ()))):
            problems.append(f"{path}.{name}: newly required")
    return problems


def incompatibilities(released: Schema, current: Schema) -> list[str]:
    return _accepts(current, current, released, released, "$")
