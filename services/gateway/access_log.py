"""Access logs without personal data: query strings (e.g. ?value=<phone> on look-ups) are dropped."""

from __future__ import annotations

import logging


class DropQueryStrings(logging.Filter):
    """uvicorn.access records carry (client, method, path, http_version, status); keep the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


def install() -> None:
    logging.getLogger("uvicorn.access").addFilter(DropQueryStrings())
