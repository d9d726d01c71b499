"""Plain helpers of the core unit tests (imported by the test modules of this folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ciba_harness import Exchange, HttpRequest, HttpResponse

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "fixtures" / "keys"
ISSUER = "https://op.example.com"


def json_response(status: int, body: Any, **headers: str) -> HttpResponse:
    all_headers = (("Content-Type", "application/json"), *headers.items())
    return HttpResponse(status, tuple(all_headers), json.dumps(body).encode())


def exchange_of(response: HttpResponse | None, *, error: str | None = None) -> Exchange:
    return Exchange(HttpRequest("POST", f"{ISSUER}/bc-authorize"), response=response, error=error)
