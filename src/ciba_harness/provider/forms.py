"""Reading request bodies: size limit, content type, form decoding, JSON decoding."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from ciba_harness.provider.errors import OAuthError, invalid_request

MAX_BODY = 64 * 1024
MAX_FIELDS = 200


class BodyTooLarge(OAuthError):
    def __init__(self) -> None:
        super().__init__("invalid_request", "request body too large", 413)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise BodyTooLarge()
        except ValueError:
            raise invalid_request("bad Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Form:
    """Decoded form: first value per name (empty values dropped, RFC 6749 §3.1) and the names
    that occurred more than once."""

    values: dict[str, str] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.values


def media_type(request: Request) -> tuple[str, dict[str, str]]:
    raw = request.headers.get("content-type", "")
    main, _, rest = raw.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        k, sep, v = part.partition("=")
        if sep:
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return main.strip().lower(), params


def parse_form_bytes(body: bytes, *, empty_is_absent: bool = False) -> Form:
    """``empty_is_absent``: an empty occurrence does not count at all (so ``a=1&a=`` is not a
    repetition; the policy empty_params_omitted)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError is a ValueError; so is "too many fields"
        raise invalid_request("malformed form body") from None
    form = Form()
    seen: set[str] = set()
    for name, value in pairs:
        if empty_is_absent and value == "":
            continue
        if name in seen:
            if name not in form.repeated:
                form.repeated.append(name)
            continue
        seen.add(name)
        if value != "":
            form.values[name] = value
    return form


async def read_form(request: Request, *, empty_is_absent: bool = False) -> Form:
    mtype, params = media_type(request)
    if mtype != "application/x-www-form-urlencoded":
        raise invalid_request("Content-Type must be application/x-www-form-urlencoded")
    charset = params.get("charset")
    if charset is not None and charset not in ("utf-8", "utf8"):
        raise invalid_request("only UTF-8 form bodies are supported")
    return parse_form_bytes(await read_body(request), empty_is_absent=empty_is_absent)


async def read_json_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    body = await read_body(request)
    if allow_empty and not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise invalid_request("body is not JSON") from None
    if not isinstance(value, dict):
        raise invalid_request("body must be a JSON object")
    return value
