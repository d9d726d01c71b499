"""Checks of the delivery side: token endpoint answers (CIBA §10.1, §11) and ping and push
callbacks (§10.2, §10.3, §12). ID token rules are in checks/_idtoken.py.

Like every check, each function returns None when its condition holds and raises a
`CheckFailure` naming the requirement when it does not; the caller picks the severity.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import urlsplit

from ciba_harness.checks._registry import CheckRunner, check
from ciba_harness.checks._responses import missing_token_members
from ciba_harness.core._codes import PUSH_ERROR_CODES
from ciba_harness.core._errors import (
    CheckFailure,
    InvalidMember,
    MalformedResponse,
    MissingMember,
    NotificationViolation,
    UnexpectedStatus,
    UnexpectedSuccess,
    WrongErrorCode,
    hide_check_failure_frames,
)
from ciba_harness.core._http import Exchange
from ciba_harness.core._notifications import MAX_NOTIFICATION_BYTES, Notification

__tracebackhide__ = hide_check_failure_frames  # pytest: check failures show the test's line

__all__ = [
    "FAST_POLL_CODES",
    "callback_arrived",
    "callback_bearer_is",
    "callback_body_is_json_object",
    "callback_content_type_json",
    "callback_count_at_most",
    "callback_has_bearer",
    "callback_is_json",
    "callback_kind_fits_mode",
    "callback_names_auth_req_id",
    "callback_size_within",
    "callback_violations",
    "fast_poll_answer_allowed",
    "no_callback_for_flow",
    "ping_body_only_auth_req_id",
    "push_error_code_allowed",
    "push_error_is",
    "push_token_payload",
    "single_redemption",
    "token_endpoint_uses_tls",
    "token_error_is",
]

#: answers the spec allows to a client polling faster than `interval` (CIBA-TOKEN-06, A-09)
FAST_POLL_CODES = frozenset({"authorization_pending", "slow_down", "invalid_request"})


# --- token endpoint -----------------------------------------------------------------------


def _status(exchange: Exchange) -> int | None:
    return exchange.response.status if exchange.response is not None else None


def _json_error_body(exchange: Exchange, requirement: str) -> dict[str, Any]:
    """The body of a 4xx token error as a JSON object with a string `error` (RFC 6749 §5.2)."""
    response = exchange.response
    assert response is not None
    body = response.json_object()
    if body is None or response.content_type != "application/json":
        raise MalformedResponse(
            requirement=requirement,
            title="Token endpoint error is not a JSON object (application/json)",
            expected="application/json body {'error': ...}",
            actual=f"{response.content_type or 'no content type'}: {response.text(200)!r}",
            exchanges=[exchange],
        )
    if not isinstance(body.get("error"), str) or not body["error"]:
        raise MissingMember(
            requirement=requirement,
            title="Token endpoint error has no string 'error' member",
            actual=body,
            exchanges=[exchange],
        )
    return body


@check(title="The token endpoint refuses with one of the expected error codes")
def token_error_is(
    exchange: Exchange,
    codes: Collection[str],
    *,
    requirement: str,
    statuses: Collection[int] = (400,),
    body_requirement: str = "CIBA-TOKEN-21",
) -> None:
    """A token endpoint error with an expected code and status.

    Tokens where an error is due, a wrong code and a wrong status break `requirement`; an error
    body that is not JSON with an `error` member breaks `body_requirement` (CIBA-TOKEN-21), so a
    provider whose error format is broken is reported once, under that rule.

    Generic: CIBA §11 / RFC 6749 §5.2: a token error with the expected code and its status (400
    unless stated)."""
    status = _status(exchange)
    if status is None:
        raise UnexpectedStatus(
            requirement=requirement,
            title="No answer from the token endpoint",
            actual=exchange.error,
            exchanges=[exchange],
        )
    if 200 <= status < 300:
        raise UnexpectedSuccess(
            requirement=requirement,
            title="Token endpoint accepted where the spec requires an error",
            expected=f"error {' or '.join(sorted(codes))}",
            actual=f"HTTP {status}",
            exchanges=[exchange],
        )
    if status >= 500:
        raise UnexpectedStatus(
            requirement=requirement,
            title="Token endpoint answered with a server error",
            expected=f"{' or '.join(str(s) for s in sorted(statuses))} {' or '.join(sorted(codes))}",
            actual=status,
            exchanges=[exchange],
        )
    error = _json_error_body(exchange, body_requirement)["error"]
    if error not in codes:
        raise WrongErrorCode(
            requirement=requirement,
            title="Wrong error code from the token endpoint",
            expected=" or ".join(sorted(codes)),
            actual=repr(error),
            exchanges=[exchange],
        )
    if status not in statuses:
        raise UnexpectedStatus(
            requirement=requirement,
            title=f"Wrong HTTP status for {error}",
            expected=" or ".join(str(s) for s in sorted(statuses)),
            actual=status,
            exchanges=[exchange],
        )


@check("CIBA-TOKEN-06")
def fast_poll_answer_allowed(
    exchange: Exchange,
    *,
    requirement: str = "CIBA-TOKEN-06",
    body_requirement: str = "CIBA-TOKEN-21",
) -> None:
    """A too-fast poll gets authorization_pending, slow_down, invalid_request or 503 + Retry-After.

    CIBA §11: a too-fast poll MAY get slow_down; otherwise authorization_pending,
    invalid_request, or 503 + Retry-After (§10.1)."""
    status = _status(exchange)
    if status == 503:
        response = exchange.response
        assert response is not None
        if not response.header("retry-after"):
            raise MissingMember(
                requirement=requirement,
                title="503 to a fast poll without Retry-After",
                expected="Retry-After header (CIBA-TOKEN-08)",
                actual="none",
                exchanges=[exchange],
            )
        return
    token_error_is(
        exchange, FAST_POLL_CODES, requirement=requirement, body_requirement=body_requirement
    )


@check("CIBA-TOKEN-16")
def single_redemption(exchanges: Sequence[Exchange], *, requirement: str = "CIBA-TOKEN-16") -> None:
    """Of concurrent redemptions of one auth_req_id exactly one yields tokens.

    CIBA §10.1.1: after a successful redemption the auth_req_id is no longer valid."""
    successes = [e for e in exchanges if _status(e) == 200]
    if len(successes) != 1:
        statuses = [_status(e) if _status(e) is not None else e.error for e in exchanges]
        raise UnexpectedSuccess(
            requirement=requirement,
            title=f"{len(successes)} of {len(exchanges)} concurrent redemptions yielded tokens",
            expected="exactly one 200",
            actual=statuses,
            exchanges=successes[:3] or list(exchanges[:1]),
        )


@check("CIBA-SEC-02")
def token_endpoint_uses_tls(url: str, *, requirement: str = "CIBA-SEC-02") -> None:
    """The token endpoint URL has the scheme https.

    RFC 6749 §3.2: the token endpoint MUST use TLS."""
    if urlsplit(url).scheme != "https":
        raise InvalidMember(
            requirement=requirement,
            title="Token endpoint is not served over TLS",
            expected="https://…",
            actual=url,
        )


# --- callbacks ------------------------------------------------------------------------------


def _notes(notes: Sequence[Notification]) -> str:
    return "; ".join(n.describe() for n in notes) or "none"


@check(title="A callback for the flow arrived")
def callback_arrived(
    notes: Sequence[Notification], *, requirement: str, what: str, waited: float
) -> None:
    """At least one callback for the flow arrived in time.

    Generic: CIBA §10.2 / §10.3: the OP sends the ping / push once the user has finished."""
    if not notes:
        raise NotificationViolation(
            requirement=requirement,
            title=f"No {what} arrived",
            expected=f"a POST to the notification endpoint within {waited:g} s",
            actual="nothing",
        )


@check(title="No callback for the flow")
def no_callback_for_flow(notes: Sequence[Notification], *, requirement: str, title: str) -> None:
    """No callback names the flow.

    Generic: CIBA §10.2 / §10.3 (implied): no callback where none is due (e.g. SEC-10 redirects
    are not followed)."""
    if notes:
        raise NotificationViolation(
            requirement=requirement, title=title, expected="no callback", actual=_notes(notes)
        )


@check(title="Not more callbacks than allowed")
def callback_count_at_most(
    notes: Sequence[Notification], maximum: int, *, requirement: str, title: str
) -> None:
    """The flow got at most `maximum` callbacks.

    Generic: CIBA §10.2 / §10.3 (implied): one callback per auth_req_id."""
    if len(notes) > maximum:
        raise NotificationViolation(
            requirement=requirement,
            title=title,
            expected=f"at most {maximum}",
            actual=f"{len(notes)}: {_notes(notes)}",
        )


@check(title="The callback carries exactly the client_notification_token as Bearer token")
def callback_bearer_is(note: Notification, token: str, *, requirement: str) -> None:
    """Authorization: Bearer <client_notification_token>, byte for byte (CIBA §10.2, §10.3)."""
    callback_has_bearer(note, requirement=requirement)
    bearer = note.bearer or ""
    if bearer != token:
        raise NotificationViolation(
            requirement=requirement,
            title="Callback bearer token differs from the client_notification_token",
            expected="the client_notification_token sent in the request",
            actual=f"a different value of {len(bearer)} characters",
            secrets=[token, bearer],
        )


@check(title="The callback body is a JSON object sent as application/json")
def callback_is_json(note: Notification, *, requirement: str) -> None:
    """Content-Type application/json and a JSON object body.

    CIBA §10.2 / §10.3: the callback body is JSON (application/json)."""
    if note.payload is None or not _json_media_type(note):
        raise NotificationViolation(
            requirement=requirement,
            title="Callback is not an application/json object",
            expected="application/json, a JSON object",
            actual=f"{note.content_type or '(no content type)'}: {note.body[:200]!r}",
        )


def _json_media_type(note: Notification) -> bool:
    return note.content_type == "application/json"


@check(title="The callback has an Authorization: Bearer credential")
def callback_has_bearer(note: Notification, *, requirement: str) -> None:
    """The callback carries Authorization: Bearer (the client_notification_token).

    Generic: CIBA §10.2 / §10.3: the OP MUST send the client_notification_token as a Bearer
    token in the Authorization header."""
    if note.bearer is None:
        raise NotificationViolation(
            requirement=requirement,
            title="Callback without Authorization: Bearer",
            expected="Authorization: Bearer <client_notification_token>",
            actual=note.describe(),
        )


@check(title="The callback body is not larger than the harness accepts")
def callback_size_within(note: Notification, *, requirement: str) -> None:
    """The callback body is at most MAX_NOTIFICATION_BYTES (64 KiB).

    Generic: CIBA §10.2 / §10.3: a ping holds only the auth_req_id and a push the token
    response, so a larger body is no callback of either kind."""
    if note.size > MAX_NOTIFICATION_BYTES:
        raise NotificationViolation(
            requirement=requirement,
            title=f"callback body of {note.size} bytes",
            expected=f"at most {MAX_NOTIFICATION_BYTES} bytes",
            actual=note.size,
        )


@check(title="The callback body is a JSON object")
def callback_body_is_json_object(note: Notification, *, requirement: str) -> None:
    """The callback body parses as a JSON object.

    Generic: CIBA §10.2 / §10.3: the body of a ping or push is a JSON object."""
    if note.payload is None:
        raise NotificationViolation(
            requirement=requirement,
            title="callback body is not a JSON object",
            expected="a JSON object",
            actual=repr(note.body[:200]),
        )


@check(title="The callback is sent as application/json")
def callback_content_type_json(note: Notification, *, requirement: str) -> None:
    """The callback's Content-Type is application/json.

    Generic: CIBA §10.2 / §10.3: the callback is an HTTP POST with an application/json body."""
    if not _json_media_type(note):
        raise NotificationViolation(
            requirement=requirement,
            title=f"content type {note.content_type or '(none)'}",
            expected="application/json",
            actual=note.content_type or "(none)",
        )


@check(title="The callback names an auth_req_id")
def callback_names_auth_req_id(note: Notification, *, requirement: str) -> None:
    """The callback carries a string auth_req_id.

    Generic: CIBA §10.3.1: a token push carries the auth_req_id of the request it answers."""
    if note.auth_req_id is None:
        raise NotificationViolation(
            requirement=requirement,
            title=f"{note.kind.replace('_', ' ')} without auth_req_id",
            expected="a string auth_req_id",
            actual=sorted(note.payload or {}),
        )


@check(title="The callback is of the client's delivery mode")
def callback_kind_fits_mode(note: Notification, mode: str, *, requirement: str) -> None:
    """A ping client gets pings; a push client gets token or error pushes, never a ping.

    Generic: CIBA §10.2 / §10.3: the OP delivers in the mode the client registered."""
    if mode == "ping" and note.kind != "ping":
        raise NotificationViolation(
            requirement=requirement,
            title=f"a ping client received a {note.kind} callback",
            expected="a ping",
            actual=note.describe(),
        )
    if mode == "push" and note.kind == "ping":
        raise NotificationViolation(
            requirement=requirement,
            title="a push client received a ping",
            expected="a token or error push",
            actual=note.describe(),
        )


def callback_violations(
    runner: CheckRunner, note: Notification, mode: str | None
) -> list[tuple[str, str]]:
    """Judge one received callback with the registered checks, through `runner`: the
    (requirement, title) of every rule it breaks. `mode` is the delivery mode the client
    expects (None: no flow expects this callback). A body too large or not a JSON object is
    judged no further."""
    push = mode == "push"
    broken: list[tuple[str, str]] = []

    def holds(failure: CheckFailure | None) -> bool:
        if failure is not None:
            broken.append((failure.requirement, failure.title))
        return failure is None

    if not holds(runner.failure(callback_size_within, note, requirement="CIBA-PING-03")):
        return broken
    body_rule = "CIBA-PUSH-02" if push else "CIBA-PING-03"
    if not holds(runner.failure(callback_body_is_json_object, note, requirement=body_rule)):
        return broken
    media_rule = "CIBA-PUSH-01" if push else "CIBA-PING-03"
    holds(runner.failure(callback_content_type_json, note, requirement=media_rule))
    bearer_rule = "CIBA-PUSH-01" if push else "CIBA-PING-02"
    holds(runner.failure(callback_has_bearer, note, requirement=bearer_rule))
    if note.kind == "push_error":
        holds(runner.failure(push_error_code_allowed, note))
    elif note.kind == "push_tokens":
        holds(runner.failure(callback_names_auth_req_id, note, requirement="CIBA-PUSH-02"))
    else:
        holds(runner.failure(ping_body_only_auth_req_id, note))
    if mode in {"ping", "push"}:
        mode_rule = "CIBA-PUSH-02" if push else "CIBA-PING-03"
        holds(runner.failure(callback_kind_fits_mode, note, str(mode), requirement=mode_rule))
    return broken


@check("CIBA-PING-03")
def ping_body_only_auth_req_id(
    note: Notification, auth_req_id: str | None = None, *, requirement: str = "CIBA-PING-03"
) -> None:
    """The ping body is exactly {"auth_req_id": <the acknowledged value>} (any string when
    `auth_req_id` is None: the flow is not known yet).

    CIBA §10.2: the ping body is a JSON object holding the auth_req_id."""
    payload = note.payload or {}
    if set(payload) != {"auth_req_id"}:
        raise NotificationViolation(
            requirement=requirement,
            title="Ping body has members other than auth_req_id",
            expected="only auth_req_id",
            actual=sorted(payload),
        )
    if auth_req_id is None:
        if not isinstance(payload["auth_req_id"], str):
            raise NotificationViolation(
                requirement=requirement,
                title="Ping auth_req_id is not a string",
                expected="a string",
                actual=repr(payload["auth_req_id"]),
            )
        return
    if payload["auth_req_id"] != auth_req_id:
        raise NotificationViolation(
            requirement=requirement,
            title="Ping auth_req_id differs from the acknowledged one",
            expected=auth_req_id,
            actual=payload["auth_req_id"],
        )


@check("CIBA-PUSH-02")
def push_token_payload(
    note: Notification, auth_req_id: str, *, requirement: str = "CIBA-PUSH-02"
) -> None:
    """The pushed token payload holds auth_req_id plus the token response members.

    CIBA §10.3.1: the push carries auth_req_id plus the token response members."""
    payload = note.payload or {}
    secrets = [
        str(payload.get(k)) for k in ("access_token", "refresh_token", "id_token") if payload.get(k)
    ]
    if payload.get("auth_req_id") != auth_req_id:
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed tokens lack the acknowledged auth_req_id",
            expected=auth_req_id,
            actual=repr(payload.get("auth_req_id")),
            secrets=secrets,
        )
    missing = missing_token_members(payload)
    if missing:
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed token payload lacks required members",
            expected="access_token, token_type, id_token",
            actual=f"missing {', '.join(missing)} (members {sorted(payload)})",
            secrets=secrets,
        )
    token_type = str(payload["token_type"])
    if token_type.lower() not in {"bearer", "dpop"}:
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed token_type is not Bearer",
            expected="Bearer",
            actual=repr(token_type),
            secrets=secrets,
        )
    expires_in = payload.get("expires_in")
    if "expires_in" in payload and (
        not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0
    ):
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed expires_in is not a positive integer",
            actual=repr(expires_in),
            secrets=secrets,
        )
    if "refresh_token" in payload and not isinstance(payload["refresh_token"], str):
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed refresh_token is not a string",
            actual=type(payload["refresh_token"]).__name__,
            secrets=secrets,
        )


@check("CIBA-PUSH-11")
def push_error_code_allowed(note: Notification, *, requirement: str = "CIBA-PUSH-11") -> None:
    """A pushed error uses access_denied, expired_token or transaction_failed and names auth_req_id.

    CIBA §12: a pushed error is access_denied, expired_token or transaction_failed, with
    auth_req_id."""
    payload = note.payload or {}
    if payload.get("error") not in PUSH_ERROR_CODES:
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed error code is not one CIBA §12 allows",
            expected=" or ".join(sorted(PUSH_ERROR_CODES)),
            actual=repr(payload.get("error")),
        )
    if not isinstance(payload.get("auth_req_id"), str) or not payload["auth_req_id"]:
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed error lacks auth_req_id",
            actual=sorted(payload),
        )


@check(title="The pushed error is the expected one for the flow")
def push_error_is(note: Notification, code: str, auth_req_id: str, *, requirement: str) -> None:
    """An error push with `error` = code and the flow's auth_req_id.

    CIBA §12: an error push carries `error` and the REQUIRED auth_req_id."""
    payload = note.payload or {}
    if note.kind != "push_error" or payload.get("error") != code:
        raise NotificationViolation(
            requirement=requirement,
            title=f"Expected a pushed error {code}",
            expected=f"{{'error': '{code}', 'auth_req_id': …}}",
            actual=f"{note.kind}, error {payload.get('error')!r}",
        )
    if payload.get("auth_req_id") != auth_req_id:
        raise NotificationViolation(
            requirement=requirement,
            title="Pushed error names another auth_req_id",
            expected=auth_req_id,
            actual=repr(payload.get("auth_req_id")),
        )
