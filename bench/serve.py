"""Serve the reference provider at /op and a trivial JSON endpoint at /trivial (one uvicorn
process on loopback) so benchmarks compare the two like for like. Prints the base URL."""

from __future__ import annotations

import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from ciba_harness import default_profile_path
from ciba_harness.provider import create_app, load_profile

TRIVIAL_BODY = {"auth_req_id": "x" * 27, "expires_in": 120, "interval": 1}


async def trivial(_: object) -> JSONResponse:
    return JSONResponse(TRIVIAL_BODY)


def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    op = create_app(load_profile(default_profile_path()), issuer=f"{base}/op")
    app = Starlette(routes=[Route("/trivial", trivial, methods=["GET", "POST"]), Mount("/op", app=op)])
    print(base, flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
