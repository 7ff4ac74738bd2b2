"""Web pages served by the API: the consultant's inbox (`/inbox`) and the ops dashboard (`/ops`). A page is
public and holds no data; it signs in with an API key and reads everything through the same /v1 routes,
under the same tenant and role checks. The charts are Apache ECharts, installed from npm into
deploy/web by `make setup` and served as its built file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"
ECHARTS = Path(__file__).resolve().parents[3] / "deploy" / "web" / "node_modules" / "echarts" / "dist" / "echarts.min.js"
_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


@cache
def _page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page() -> HTMLResponse:
    return HTMLResponse(_page("inbox.html"), headers=_HEADERS)


@router.get("/ops", response_class=HTMLResponse)
async def ops_page() -> HTMLResponse:
    return HTMLResponse(_page("ops.html"), headers=_HEADERS)


@router.get("/static/echarts.min.js")
async def echarts(request: Request) -> FileResponse:
    path = getattr(request.app.state, "echarts_file", None) or ECHARTS
    if not path.exists():
        raise HTTPException(404, "ECharts is not installed: run `make setup` (npm ci --prefix deploy/web)")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})
