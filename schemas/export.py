"""Export the event models as JSON Schema files under schemas/json (run: python -m schemas.export).

A unit test fails when the committed files differ from the models, so the contract cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.topics import TOPICS

JSON_DIR = Path(__file__).parent / "json"


def rendered() -> dict[str, str]:
    files: dict[str, str] = {}
    for spec in TOPICS:
        model = spec.value
        schema = model.model_json_schema()
        schema["$id"] = f"leadflow/{spec.name}/{model.__name__}.v1.json"
        schema["x-topic"] = spec.name
        schema["x-key"] = spec.key
        schema["x-writer"] = spec.writer
        files[f"{model.__name__}.v1.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return files


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (JSON_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/json/{name}")


if __name__ == "__main__":
    main()
