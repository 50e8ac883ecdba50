"""`GET /api/cluster`: the processes sharing the work, what each probes, and the leader."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from apiwatch.api.deps import RuntimeDep

router = APIRouter(prefix="/api", tags=["cluster"])


@router.get("/cluster", summary="Workers, their providers and heartbeats, and the leader")
async def cluster(runtime: RuntimeDep) -> dict[str, Any]:
    return await runtime.sharing.view()
