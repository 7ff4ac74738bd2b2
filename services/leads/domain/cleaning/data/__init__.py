"""Bundled reference data for cleaning (see README.md for sources and licences)."""
