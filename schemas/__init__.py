"""The event contract of leadflow: every event model and every topic, declared once.

Services import topics from `schemas.topics` and models from the family modules; no topic name is
written anywhere else. JSON Schema exports of the models live in `schemas/json/` (see `export.py`).
"""
