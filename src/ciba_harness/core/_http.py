"""HTTP messages as plain data, the recorded exchange, redaction and the curl reproducer.

The protocol core builds `HttpRequest` values and judges `HttpResponse` values; it never
performs I/O. A transport (httpx, Locust's FastHttpSession) turns one into the other.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "Exchange",
    "REDACTED",
    "redact",
    "to_curl",
    "form_body",
]

REDACTED = "***"
# Form fields and headers whose values are always secret, whatever the config says.
SECRET_FIELDS = frozenset(
    {
        "client_secret",
        "client_assertion",
        "client_notification_token",
        "refresh_token",
        "access_token",
        "id_token",
        "id_token_hint",
        "login_hint_token",
        "request",
        "user_code",
    }
)
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Secrets shorter than this are not masked inside free text: masking "a" would mangle output.
_MIN_MASKED_LENGTH = 4
# How much of a body a report shows. Redaction runs on the whole body first: a preview cut in
# the middle of a JSON document or of a secret must not show what the cut hid from the parser.
_PREVIEW_LIMIT = 2000
_JSON_SECRET_MEMBER = re.compile(
    r'("(?:' + "|".join(sorted(SECRET_FIELDS)) + r')"\s*:\s*")((?:[^"\\]|\\.)*)'
)


def form_body(fields: Iterable[tuple[str, str]]) -> bytes:
    """Encode form fields, keeping order and repeated names (tests send duplicates on purpose)."""
    return urlencode(list(fields)).encode("ascii")


@dataclass(frozen=True)
class HttpRequest:
    """A request as data. `secrets` lists values that must never be shown unmasked."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    secrets: frozenset[str] = frozenset()

    @classmethod
    def form_post(
        cls,
        url: str,
        fields: Iterable[tuple[str, str]],
        *,
        headers: Iterable[tuple[str, str]] = (),
        secrets: Iterable[str] = (),
    ) -> HttpRequest:
        all_headers = (("Content-Type", FORM_CONTENT_TYPE), ("Accept", "application/json"))
        return cls(
            "POST",
            url,
            all_headers + tuple(headers),
            form_body(fields),
            frozenset(s for s in secrets if s),
        )

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def form_fields(self) -> list[tuple[str, str]]:
        """The body decoded as form fields (empty when it is not a form)."""
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != FORM_CONTENT_TYPE:
            return []
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def replace(self, **changes: Any) -> HttpRequest:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class HttpResponse:
    """A response as data. Header names are compared case-insensitively."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """Decoded JSON body; raises ValueError for anything else (also for JSON nested too
        deeply to decode: a hostile provider must not crash the harness)."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except RecursionError:
            raise ValueError("JSON nested too deeply to decode") from None

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            value = self.json()
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def text(self, limit: int = 2000) -> str:
        text = self.body[:limit].decode("utf-8", "replace")
        return text + ("…" if len(self.body) > limit else "")


@dataclass
class Exchange:
    """One request, what came back (or the transport error), and how long it took."""

    request: HttpRequest
    response: HttpResponse | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    elapsed: float = 0.0
    label: str = ""
    # Why the transport sent the request a second time (a stale keep-alive connection), if it did
    retried: str | None = None

    def describe(self, extra_secrets: Iterable[str] = ()) -> str:
        """Redacted, human-readable evidence for a failure report."""
        secrets = set(self.request.secrets) | set(extra_secrets)
        lines = [f"> {self.request.method} {_redact_url(self.request.url, secrets)}"]
        for key, value in self.request.headers:
            lines.append(f"> {key}: {_redact_header(key, value, secrets)}")
        if self.request.body:
            lines.append(f"> {_redact_body(self.request, secrets)}")
        if self.response is not None:
            lines.append(f"< {self.response.status} ({self.elapsed * 1000:.0f} ms)")
            for key, value in self.response.headers:
                if key.lower() in {
                    "content-type",
                    "cache-control",
                    "pragma",
                    "www-authenticate",
                    "location",
                    "retry-after",
                }:
                    lines.append(f"< {key}: {_redact_header(key, value, secrets)}")
            lines.append(f"< {_response_preview(self.response, secrets)}")
        if self.error is not None:
            lines.append(f"! {redact(self.error, secrets)} (after {self.elapsed:.2f} s)")
        if self.retried is not None:
            lines.append(f"! sent twice: {redact(self.retried, secrets)}")
        return "\n".join(lines)

    def to_dict(self, extra_secrets: Iterable[str] = ()) -> dict[str, Any]:
        """Redacted JSON-ready form, for reports."""
        secrets = set(self.request.secrets) | set(extra_secrets)
        response: dict[str, Any] | None = None
        if self.response is not None:
            response = {
                "status": self.response.status,
                "headers": {k: _redact_header(k, v, secrets) for k, v in self.response.headers},
                "body": _response_preview(self.response, secrets),
            }
        return {
            "label": self.label,
            "request": {
                "method": self.request.method,
                "url": _redact_url(self.request.url, secrets),
                "headers": {k: _redact_header(k, v, secrets) for k, v in self.request.headers},
                "body": _redact_body(self.request, secrets) if self.request.body else "",
            },
            "response": response,
            "error": redact(self.error, secrets) if self.error else None,
            "started_at": self.started_at,
            "elapsed_ms": round(self.elapsed * 1000, 1),
            "curl": to_curl(self.request, secrets),
            **({"retried": redact(self.retried, secrets)} if self.retried is not None else {}),
        }


def _encodings(secret: str) -> set[str]:
    """A secret as it may appear in a URL, a form body or a JSON string."""
    return {
        secret,
        quote_plus(secret, safe=""),
        quote_plus(secret, safe="*"),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def redact(text: str, secrets: Iterable[str]) -> str:
    """Mask every occurrence of each secret, also URL- and JSON-encoded (longest first, so
    overlapping secrets mask fully)."""
    variants = {v for s in secrets if len(s) >= _MIN_MASKED_LENGTH for v in _encodings(s)}
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, REDACTED)
    return text


def redact_json_text(text: str, secrets: Iterable[str]) -> str:
    """Mask secret members of a JSON body (tokens in token responses) and known secrets."""
    try:
        value = json.loads(text)
        if isinstance(value, dict | list):
            text = json.dumps(_mask_members(value))
    except (ValueError, RecursionError):
        # Not JSON, cut short or nested too deeply: still mask what looks like a secret member.
        masked = _JSON_SECRET_MEMBER.sub(lambda m: m.group(1) + _mask_value(m.group(2)), text)
        return redact(masked, secrets)
    return redact(text, secrets)


def _mask_members(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (_mask_value(v) if k in SECRET_FIELDS else _mask_members(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_members(v) for v in value]
    return value


def _preview(text: str, limit: int = _PREVIEW_LIMIT) -> str:
    return text[:limit] + ("…" if len(text) > limit else "")


def _response_preview(response: HttpResponse, secrets: Iterable[str]) -> str:
    return _preview(redact_json_text(response.body.decode("utf-8", "replace"), secrets))


def _redact_url(url: str, secrets: Iterable[str]) -> str:
    """Mask secret query parameters (a query-string request) and known secrets."""
    base, separator, query = url.partition("?")
    if separator:
        fields = parse_qsl(query, keep_blank_values=True)
        if any(k in SECRET_FIELDS for k, _ in fields):
            masked = [(k, REDACTED if k in SECRET_FIELDS and v else v) for k, v in fields]
            url = f"{base}?{urlencode(masked, safe='*')}"
    return redact(url, secrets)


def _mask_value(value: Any) -> str:
    # Tokens are shown only as a short prefix so two reports can still be told apart.
    if isinstance(value, str) and len(value) > 12:
        return value[:4] + REDACTED
    return REDACTED


def _redact_header(name: str, value: str, secrets: Iterable[str]) -> str:
    if name.lower() in SECRET_HEADERS:
        scheme, _, rest = value.partition(" ")
        return f"{scheme} {REDACTED}" if rest else REDACTED
    return redact(value, secrets)


def _redact_body(request: HttpRequest, secrets: Iterable[str]) -> str:
    fields = request.form_fields()
    if fields:
        masked = [(k, REDACTED if k in SECRET_FIELDS and v else v) for k, v in fields]
        return redact(urlencode(masked, safe="*"), secrets)
    return _preview(redact_json_text(request.body.decode("utf-8", "replace"), secrets), 4000)


def to_curl(request: HttpRequest, secrets: Iterable[str] = ()) -> str:
    """A shell-safe curl command reproducing the request, with secrets masked."""
    all_secrets = set(request.secrets) | set(secrets)
    parts = ["curl", "-i", "-X", request.method, shlex.quote(_redact_url(request.url, all_secrets))]
    for key, value in request.headers:
        parts += ["-H", shlex.quote(f"{key}: {_redact_header(key, value, all_secrets)}")]
    if request.body:
        parts += ["--data-raw", shlex.quote(_redact_body(request, all_secrets))]
    return " ".join(parts)


def headers_from(
    mapping: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    items = mapping.items() if isinstance(mapping, Mapping) else mapping
    return tuple((str(k), str(v)) for k, v in items)
