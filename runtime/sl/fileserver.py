"""The SL's peer file server: blobs by SHA-256, over mutual TLS (port 30305 by default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from swarmlearning.sl.blobs import HEX_DIGEST, BlobStore


def file_server(store: BlobStore, info: Callable[[], dict[str, Any]]) -> Starlette:
    """GET /v1/blobs/<sha256> serves a blob; GET /v1/health says who this is."""

    async def blob(request: Request) -> Response:
        name = request.path_params["digest"]
        if not HEX_DIGEST.match(name):
            return JSONResponse({"detail": "a blob is named by 64 lower-case hex digits"},
                                status_code=400)
        path = store.path(name)
        if not path.exists():
            return JSONResponse({"detail": f"no blob {name} here"}, status_code=404)
        return FileResponse(path, media_type="application/octet-stream")

    async def health(request: Request) -> Response:
        return JSONResponse(info())

    return Starlette(routes=[Route("/v1/blobs/{digest}", blob, methods=["GET"]),
                             Route("/v1/health", health, methods=["GET"])])
