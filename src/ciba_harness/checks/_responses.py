"""Generic response checks (any endpoint's errors, status, caching), the acknowledgement
(CIBA §7.3) and the token response (CIBA §10.1.1).

Like every check, each function returns None when its condition holds and raises a
`CheckFailure` naming the requirement when it does not; the caller picks the severity.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any, TypeGuard

from ciba_harness.checks._registry import check
from ciba_harness.core._codes import (
    AUTH_REQ_ID_PATTERN,
    ERROR_BODY_MEMBERS,
    ERROR_DESCRIPTION_PATTERN,
    ERROR_URI_PATTERN,
)
from ciba_harness.core._errors import (
    CheckFailure,
    InvalidMember,
    MalformedResponse,
    MissingMember,
    UnexpectedStatus,
    UnexpectedSuccess,
    WrongErrorCode,
    hide_check_failure_frames,
)
from ciba_harness.core._http import Exchange

__tracebackhide__ = hide_check_failure_frames  # pytest: check failures show the test's line

__all__ = [
    "ack_auth_req_id_charset",
    "ack_expires_in",
    "ack_has_auth_req_id",
    "ack_interval",
    "ack_is_json",
    "ack_no_interval_for_push",
    "ack_status_ok",
    "auth_req_id_entropy",
    "error_body_well_formed",
    "error_charset",
    "error_code_is",
    "error_description_charset",
    "error_uri_charset",
    "estimate_entropy_bits",
    "fail",
    "no_store",
    "not_server_error",
    "refused",
    "status_is",
    "missing_token_members",
    "token_members_present",
    "token_response_complete",
    "token_type_bearer",
    "www_authenticate_present",
]


# --- helpers -----------------------------------------------------------------------------


def _body(exchange: Exchange, requirement: str) -> dict[str, Any]:
    response = exchange.response
    if response is None:
        raise MalformedResponse(
            requirement=requirement,
            title="No HTTP response",
            actual=exchange.error,
            exchanges=[exchange],
        )
    body = response.json_object()
    if body is None:
        raise MalformedResponse(
            requirement=requirement,
            title="Response body is not a JSON object",
            expected="a JSON object",
            actual=f"{response.content_type or 'no content type'}: {response.text(200)!r}",
            exchanges=[exchange],
        )
    return body


def _status(exchange: Exchange) -> int | None:
    return exchange.response.status if exchange.response is not None else None


def _is_positive_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# --- generic response checks ------------------------------------------------------------


@check(title="The request is refused with one of the expected error codes")
def error_code_is(exchange: Exchange, codes: Collection[str], *, requirement: str) -> None:
    """The request is refused with one of the expected error codes.

    Generic (the caller names the row): CIBA §13 / §11 and RFC 6749 §5.2 give each refusal its
    error code."""
    status = _status(exchange)
    if status is not None and 200 <= status < 300:
        raise UnexpectedSuccess(
            requirement=requirement,
            title="Request accepted where the spec requires an error",
            expected=f"error {' or '.join(sorted(codes))}",
            actual=f"HTTP {status}",
            exchanges=[exchange],
        )
    body = _body(exchange, requirement)
    error = body.get("error")
    if error not in codes:
        raise WrongErrorCode(
            requirement=requirement,
            title="Wrong error code",
            expected=" or ".join(sorted(codes)),
            actual=repr(error),
            exchanges=[exchange],
        )


@check(title="The HTTP status is one of the expected values")
def status_is(exchange: Exchange, statuses: Collection[int], *, requirement: str) -> None:
    """The HTTP status is one of the expected values.

    Generic (the caller names the row): CIBA §13 pairs each error code with an HTTP status; RFC
    6749 §5.2: 400 unless stated."""
    status = _status(exchange)
    if status not in statuses:
        raise UnexpectedStatus(
            requirement=requirement,
            title="Unexpected HTTP status",
            expected=" or ".join(str(s) for s in sorted(statuses)),
            actual=status if status is not None else exchange.error,
            exchanges=[exchange],
        )


@check(title="Not a server error")
def not_server_error(exchange: Exchange, *, requirement: str, retry_after_ok: bool = False) -> None:
    """The provider answers within the request timeout; no 5xx (503 + Retry-After where the
    caller allows it).

    Generic: a 5xx is no CIBA answer (CIBA §13 lists none; catalogue CIBA-AERR-16); §10.1 lets
    the token endpoint answer 503 with Retry-After (`retry_after_ok`)."""
    response = exchange.response
    if response is None:
        raise UnexpectedStatus(
            requirement=requirement,
            title="No answer (hang, reset or refused connection)",
            expected="an HTTP answer within budgets.request_timeout",
            actual=exchange.error,
            exchanges=[exchange],
        )
    if response.status >= 500:
        if retry_after_ok and response.status == 503 and response.header("retry-after"):
            return
        raise UnexpectedStatus(
            requirement=requirement,
            title="Server error",
            expected="an answer below 500",
            actual=f"HTTP {response.status}: {response.text(200)!r}",
            exchanges=[exchange],
        )


@check(title="No auth_req_id is issued")
def refused(exchange: Exchange, *, requirement: str) -> None:
    """The request does not yield an auth_req_id or tokens (any refusal counts).

    Generic: a request the spec says to refuse (the caller's row, e.g. CIBA §7.2 step 6, §13)
    yields no auth_req_id or tokens."""
    status = _status(exchange)
    if status is not None and 200 <= status < 300:
        raise UnexpectedSuccess(
            requirement=requirement,
            title="Request accepted where it must be refused",
            expected="any refusal (4xx)",
            actual=f"HTTP {status}",
            exchanges=[exchange],
        )


@check(title="Error body is a JSON object with only error, error_description, error_uri")
def error_body_well_formed(
    exchange: Exchange, *, requirement: str, allow_extra_members: bool = False
) -> None:
    """An error response is application/json with a string `error` and allowed members.

    CIBA §13 / RFC 6749 §5.2: the error response is JSON (application/json) with a REQUIRED
    `error`, OPTIONAL `error_description`, `error_uri`."""
    response = exchange.response
    body = _body(exchange, requirement)
    assert response is not None
    if response.content_type != "application/json":
        raise MalformedResponse(
            requirement=requirement,
            title="Error response content type is not application/json",
            expected="application/json",
            actual=response.content_type or "(none)",
            exchanges=[exchange],
        )
    if not isinstance(body.get("error"), str) or not body["error"]:
        raise MissingMember(
            requirement=requirement,
            title="Error response has no string 'error' member",
            actual=body,
            exchanges=[exchange],
        )
    extra = set(body) - ERROR_BODY_MEMBERS
    if extra and not allow_extra_members:
        raise InvalidMember(
            requirement=requirement,
            title="Error response has members beyond error, error_description, error_uri",
            actual=sorted(extra),
            exchanges=[exchange],
        )


@check("CIBA-AERR-02")
def error_description_charset(exchange: Exchange, *, requirement: str = "CIBA-AERR-02") -> None:
    """error_description uses only %x20-21 / %x23-5B / %x5D-7E (no quote, backslash, CR/LF).

    CIBA §13 / RFC 6749 §5.2: error_description MUST NOT include characters outside %x20-21 /
    %x23-5B / %x5D-7E."""
    body = exchange.response.json_object() if exchange.response is not None else None
    description = body.get("error_description") if body else None
    if description is not None and (
        not isinstance(description, str) or not ERROR_DESCRIPTION_PATTERN.fullmatch(description)
    ):
        raise InvalidMember(
            requirement=requirement,
            title="error_description contains characters outside %x20-21 / %x23-5B / %x5D-7E",
            actual=repr(description),
            exchanges=[exchange],
        )


@check("CIBA-AERR-03")
def error_uri_charset(exchange: Exchange, *, requirement: str = "CIBA-AERR-03") -> None:
    """error_uri, when present, uses only %x21 / %x23-5B / %x5D-7E.

    RFC 6749 §5.2: error_uri MUST NOT include characters outside %x21 / %x23-5B / %x5D-7E."""
    body = exchange.response.json_object() if exchange.response is not None else None
    uri = body.get("error_uri") if body else None
    if uri is not None and (not isinstance(uri, str) or not ERROR_URI_PATTERN.fullmatch(uri)):
        raise InvalidMember(
            requirement=requirement,
            title="error_uri contains characters outside %x21 / %x23-5B / %x5D-7E",
            actual=repr(uri),
            exchanges=[exchange],
        )


@check(title="error_description and error_uri use the allowed characters")
def error_charset(exchange: Exchange, *, requirement: str) -> None:
    """RFC 6749 §5.2 charsets for error_description and error_uri (the body must be JSON).

    Generic (the caller names the row): the rules of error_description_charset and
    error_uri_charset for any endpoint's error."""
    _body(exchange, requirement)
    error_description_charset(exchange, requirement=requirement)
    error_uri_charset(exchange, requirement=requirement)


@check(title="Basic-authentication failure carries WWW-Authenticate")
def www_authenticate_present(exchange: Exchange, *, requirement: str) -> None:
    """A 401 answer to HTTP Basic authentication carries a WWW-Authenticate header.

    RFC 6749 §5.2: after HTTP Basic the 401 MUST include a WWW-Authenticate header field."""
    response = exchange.response
    if response is not None and response.status == 401 and not response.header("www-authenticate"):
        raise MissingMember(
            requirement=requirement,
            title="401 without WWW-Authenticate header",
            expected="WWW-Authenticate header",
            actual="none",
            exchanges=[exchange],
        )


@check(title="The response is cacheable-safe (Cache-Control: no-store)")
def no_store(exchange: Exchange, *, requirement: str, pragma: bool = False) -> None:
    """`Cache-Control` contains no-store (and optionally `Pragma: no-cache`).

    RFC 6749 §5.1 (via CIBA §10.1.1): token responses MUST carry Cache-Control: no-store (and
    Pragma: no-cache)."""
    response = exchange.response
    cache_control = (response.header("cache-control") or "") if response else ""
    if "no-store" not in cache_control.lower():
        raise MissingMember(
            requirement=requirement,
            title="Cache-Control: no-store missing",
            expected="Cache-Control: no-store",
            actual=cache_control or "(none)",
            exchanges=[exchange],
        )
    if pragma and response is not None and "no-cache" not in (response.header("pragma") or ""):
        raise MissingMember(
            requirement=requirement,
            title="Pragma: no-cache missing",
            expected="Pragma: no-cache",
            actual=response.header("pragma") or "(none)",
            exchanges=[exchange],
        )


# --- acknowledgement checks (CIBA §7.3) -------------------------------------------------


@check("CIBA-ACK-01")
def ack_status_ok(exchange: Exchange, *, requirement: str = "CIBA-ACK-01") -> None:
    """A valid authentication request is answered 200.

    CIBA §7.3: a successful authentication request is answered with HTTP 200."""
    status_is(exchange, {200}, requirement=requirement)


@check("CIBA-ACK-02")
def ack_is_json(exchange: Exchange, *, requirement: str = "CIBA-ACK-02") -> None:
    """The acknowledgement is application/json holding a JSON object.

    CIBA §7.3: the acknowledgement is a JSON object in an application/json body."""
    response = exchange.response
    if response is None or response.content_type != "application/json":
        raise MalformedResponse(
            requirement=requirement,
            title="Acknowledgement content type is not application/json",
            expected="application/json",
            actual=response.content_type if response else exchange.error,
            exchanges=[exchange],
        )
    _body(exchange, requirement)


@check("CIBA-ACK-03")
def ack_has_auth_req_id(exchange: Exchange, *, requirement: str = "CIBA-ACK-03") -> None:
    """auth_req_id is a non-empty string.

    CIBA §7.3: auth_req_id is REQUIRED in the acknowledgement."""
    value = _body(exchange, requirement).get("auth_req_id")
    if not isinstance(value, str) or not value:
        raise MissingMember(
            requirement=requirement,
            title="auth_req_id missing or not a non-empty string",
            actual=repr(value),
            exchanges=[exchange],
        )


@check("CIBA-ACK-04")
def ack_auth_req_id_charset(exchange: Exchange, *, requirement: str = "CIBA-ACK-04") -> None:
    """auth_req_id uses only A-Z a-z 0-9 . - _

    CIBA §7.3: auth_req_id MUST use only the characters A-Z a-z 0-9 . - _ ."""
    value = _body(exchange, requirement).get("auth_req_id")
    if not isinstance(value, str) or not AUTH_REQ_ID_PATTERN.fullmatch(value):
        raise InvalidMember(
            requirement=requirement,
            title="auth_req_id uses characters outside A-Z a-z 0-9 . - _",
            expected=AUTH_REQ_ID_PATTERN.pattern,
            actual=repr(value),
            exchanges=[exchange],
        )


@check("CIBA-ACK-07")
def ack_expires_in(exchange: Exchange, *, requirement: str = "CIBA-ACK-07") -> None:
    """expires_in is a JSON number holding a positive integer (at most a year).

    CIBA §7.3: expires_in is REQUIRED, a positive integer of seconds."""
    value = _body(exchange, requirement).get("expires_in")
    if not _is_positive_int(value) or value > 365 * 24 * 3600:
        raise InvalidMember(
            requirement=requirement,
            title="expires_in is not a positive integer number of seconds",
            actual=repr(value),
            exchanges=[exchange],
        )


@check("CIBA-ACK-08")
def ack_interval(exchange: Exchange, *, requirement: str = "CIBA-ACK-08") -> None:
    """interval, when present, is a JSON number holding a positive integer (at most 6 h).

    CIBA §7.3: interval is OPTIONAL; when sent it is a positive integer of seconds."""
    body = _body(exchange, requirement)
    interval = body.get("interval")
    if "interval" in body and (not _is_positive_int(interval) or interval > 21600):
        raise InvalidMember(
            requirement=requirement,
            title="interval is not a positive integer number of seconds",
            actual=repr(interval),
            exchanges=[exchange],
        )


@check("CIBA-ACK-09")
def ack_no_interval_for_push(exchange: Exchange, *, requirement: str = "CIBA-ACK-09") -> None:
    """A push client's acknowledgement carries no interval.

    CIBA §7.3 (descriptive): interval is meant for poll and ping clients only."""
    body = _body(exchange, requirement)
    if "interval" in body:
        raise InvalidMember(
            requirement=requirement,
            title="interval sent to a push client",
            actual=repr(body["interval"]),
            exchanges=[exchange],
        )


def estimate_entropy_bits(samples: Iterable[str]) -> float:
    """Estimated bits of entropy of one id, from many samples.

    Per position: Shannon entropy with the Miller-Madow bias correction, normalised by the
    most that N samples can show (log2 N) and scaled to the pooled alphabet. Summing positions
    catches ids that are long but mostly constant (a fixed prefix, a counter), which a
    character-frequency estimate over one value overstates.
    """
    values = [s for s in samples if s]
    if not values:
        return 0.0
    alphabet_bits = math.log2(max(2, len(set("".join(values)))))
    if len(values) == 1:
        return _shannon(Counter(values[0])) * len(values[0])
    observable_bits = min(math.log2(len(values)), alphabet_bits)
    total = 0.0
    for position in range(min(len(v) for v in values)):
        counts = Counter(v[position] for v in values)
        corrected = _shannon(counts) + (len(counts) - 1) / (2 * len(values) * math.log(2))
        total += alphabet_bits * min(1.0, corrected / observable_bits)
    return total


def _shannon(counts: Counter[str]) -> float:
    size = sum(counts.values())
    return -sum(c / size * math.log2(c / size) for c in counts.values())


@check("CIBA-ACK-05")
def auth_req_id_entropy(
    auth_req_ids: list[str], *, minimum_bits: float = 128.0, requirement: str = "CIBA-ACK-05"
) -> None:
    """auth_req_id values carry at least the required entropy and are never repeated.

    CIBA §7.3: auth_req_id MUST carry at least 128 bits of entropy (160 RECOMMENDED)."""
    duplicates = [value for value, count in Counter(auth_req_ids).items() if count > 1]
    if duplicates:
        raise InvalidMember(
            requirement=requirement,
            title="auth_req_id values repeat across requests",
            actual=f"{len(duplicates)} repeated value(s)",
        )
    bits = estimate_entropy_bits(auth_req_ids)
    if bits < minimum_bits:
        raise InvalidMember(
            requirement=requirement,
            title="auth_req_id entropy below the required minimum",
            expected=f">= {minimum_bits:.0f} bits",
            actual=f"about {bits:.0f} bits estimated over {len(auth_req_ids)} samples",
        )


# --- token response checks (CIBA §10.1.1) ------------------------------------------------


@check("CIBA-TOKEN-14")
def token_response_complete(
    exchange: Exchange, *, openid: bool = True, requirement: str = "CIBA-TOKEN-14"
) -> None:
    """A successful token response has access_token, token_type and (openid) id_token.

    CIBA §10.1.1 / OIDC Core §3.1.3.3: a successful token response holds access_token,
    token_type and id_token."""
    status_is(exchange, {200}, requirement=requirement)
    body = _body(exchange, requirement)
    token_members_present(body, openid=openid, requirement=requirement, exchange=exchange)
    if "expires_in" in body and not _is_positive_int(body["expires_in"]):
        raise InvalidMember(
            requirement=requirement,
            title="expires_in is not a positive integer",
            actual=repr(body["expires_in"]),
            exchanges=[exchange],
        )


def required_token_members(openid: bool = True) -> list[str]:
    return ["access_token", "token_type"] + (["id_token"] if openid else [])


def missing_token_members(payload: Mapping[str, Any], *, openid: bool = True) -> list[str]:
    """The required token response members that are not non-empty strings, in order."""
    return [
        name
        for name in required_token_members(openid)
        if not isinstance(payload.get(name), str) or not payload[name]
    ]


@check("CIBA-TOKEN-14")
def token_members_present(
    payload: Mapping[str, Any],
    *,
    openid: bool = True,
    requirement: str = "CIBA-TOKEN-14",
    exchange: Exchange | None = None,
) -> None:
    """access_token, token_type and (openid) id_token are non-empty strings.

    CIBA §10.1.1 / OIDC Core §3.1.3.3: a successful token response holds access_token,
    token_type and id_token."""
    missing = missing_token_members(payload, openid=openid)
    if missing:
        raise MissingMember(
            requirement=requirement,
            title="Token response lacks required members",
            expected=", ".join(required_token_members(openid)),
            actual=f"missing {', '.join(missing)}",
            exchanges=[exchange] if exchange else [],
        )


@check("CIBA-TOKEN-25")
def token_type_bearer(
    payload: Mapping[str, Any],
    *,
    requirement: str = "CIBA-TOKEN-25",
    exchange: Exchange | None = None,
) -> None:
    """token_type is Bearer (case-insensitive) or DPoP.

    RFC 6749 §5.1: token_type is REQUIRED (case-insensitive), Bearer here (DPoP when bound)."""
    value = payload.get("token_type")
    if not isinstance(value, str) or value.lower() not in {"bearer", "dpop"}:
        raise InvalidMember(
            requirement=requirement,
            title="token_type is not Bearer",
            expected="Bearer",
            actual=repr(value),
            exchanges=[exchange] if exchange else [],
        )


def fail(requirement: str, title: str, **details: Any) -> CheckFailure:
    """Build a plain CheckFailure (for conditions too small to deserve their own check)."""
    return CheckFailure(requirement=requirement, title=title, **details)
