"""The SL's peer file server: blobs by SHA-256, over mutual TLS (port 30305 by default)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from swarmlearning.sl.blobs import HEX_DIGEST, BlobStore, BlobStoreError
from swarmlearning.weights import Buffer

PIECE = 1 << 20
OCTETS = "application/octet-stream"


class BlobFileResponse(FileResponse):
    """A blob file, read and sent in 1 MiB pieces (Starlette's 64 KiB costs a thread hop per
    piece, a thousand for a 64 MB model)."""

    chunk_size = PIECE


def _pieces(data: Buffer) -> AsyncIterator[memoryview]:
    async def pieces() -> AsyncIterator[memoryview]:
        view = memoryview(data)
        for start in range(0, len(view), PIECE):
            yield view[start:start + PIECE]

    return pieces()


def file_server(store: BlobStore, info: Callable[[], dict[str, Any]]) -> Starlette:
    """GET /v1/blobs/<sha256> serves a blob; GET /v1/health says who this is."""

    async def blob(request: Request) -> Response:
        name = request.path_params["digest"]
        if not HEX_DIGEST.match(name):
            return JSONResponse({"detail": "a blob is named by 64 lower-case hex digits"},
                                status_code=400)
        missing = JSONResponse({"detail": f"no blob {name} here"}, status_code=404)
        if store.memory:
            try:
                data = store.get(name)
            except BlobStoreError:
                return missing
            return StreamingResponse(_pieces(data), media_type=OCTETS,
                                     headers={"content-length": str(len(data))})
        path = store.path(name)
        if not path.exists():
            return missing
        return BlobFileResponse(path, media_type=OCTETS)

    async def health(request: Request) -> Response:
        return JSONResponse(info())

    return Starlette(routes=[Route("/v1/blobs/{digest}", blob, methods=["GET"]),
                             Route("/v1/health", health, methods=["GET"])])
