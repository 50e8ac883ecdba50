"""`GET /metrics`: the Prometheus exposition (text format 0.0.4, or OpenMetrics when the
scraper's Accept header asks for it). Metric families are described in docs/metrics.md;
kept out of the OpenAPI document, which describes the JSON API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from apiwatch.api.deps import RuntimeDep
from apiwatch.runtime.metrics import render

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, runtime: RuntimeDep) -> StreamingResponse:
    await runtime.metrics_state.refresh()
    body, content_type = await render(runtime.metrics, request.headers.get("accept", ""))
    # Sent as it is written (chunked): the whole text is never held at once.
    return StreamingResponse(body, headers={"Content-Type": content_type})
