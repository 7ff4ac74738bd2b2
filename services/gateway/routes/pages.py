"""Web pages served by the API: the consultant's inbox (`/inbox`). The page itself is public and holds no
data; it signs in with the consultant's API key and reads everything through the same /v1 routes, under
the same tenant and role checks."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"


@cache
def _page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page() -> HTMLResponse:
    return HTMLResponse(_page("inbox.html"), headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                                       "Referrer-Policy": "no-referrer"})
