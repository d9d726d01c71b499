"""Checks of the request side: discovery metadata, the authentication request, its
acknowledgement and its errors (CIBA §4, §7, §13).

The sequences that send a request and judge the answer with these checks (in the order that
attributes a failure to the rule it proves broken) are in ciba_harness.pytest_plugin.sequences.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Container, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ciba_harness.checks._registry import check
from ciba_harness.core._errors import (
    InvalidMember,
    MissingMember,
    NotificationViolation,
    UnexpectedStatus,
    UnexpectedSuccess,
    hide_check_failure_frames,
)
from ciba_harness.core._http import Exchange
from ciba_harness.core._notifications import Notification
from ciba_harness.core._requests import (
    error_code,
    parse_acknowledgement,
)

__tracebackhide__ = hide_check_failure_frames  # pytest: check failures show the test's line

__all__ = [
    "ERROR_STATUS",
    "LOOPBACK_HOSTS",
    "accepted",
    "auth_req_ids_unique",
    "backchannel_endpoint_https",
    "ciba_grant_advertised",
    "delivery_modes_valid",
    "invalid_value_refused",
    "issuer_matches",
    "describe_refusal",
    "metadata_document",
    "no_acknowledgement",
    "mtls_alias_valid",
    "no_notifications",
    "request_signing_algs_asymmetric",
    "request_signing_algs_listed",
    "user_code_parameter_boolean",
]

#: error code -> (requirement that fixes its status, allowed statuses) (CIBA §13).
#: invalid_client: 401 per §13; 400 allowed without HTTP Basic (RFC 6749 §5.2, A-01).
ERROR_STATUS: Mapping[str, tuple[str, frozenset[int]]] = {
    "invalid_request": ("CIBA-AERR-04", frozenset({400})),
    "invalid_scope": ("CIBA-AERR-05", frozenset({400})),
    "expired_login_hint_token": ("CIBA-AERR-06", frozenset({400})),
    "unknown_user_id": ("CIBA-AERR-07", frozenset({400})),
    "unauthorized_client": ("CIBA-AERR-08", frozenset({400})),
    "missing_user_code": ("CIBA-AERR-09", frozenset({400})),
    "invalid_user_code": ("CIBA-AERR-10", frozenset({400})),
    "invalid_binding_message": ("CIBA-AERR-11", frozenset({400})),
    "invalid_client": ("CIBA-AERR-12", frozenset({401, 400})),
    "access_denied": ("CIBA-AERR-13", frozenset({403})),
}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DELIVERY_MODES = frozenset({"poll", "ping", "push"})
CIBA_GRANT = "urn:openid:params:grant-type:ciba"



# --- response checks ----------------------------------------------------------------------


@check(title="The request is accepted (2xx)")
def accepted(exchange: Exchange, *, requirement: str) -> None:
    """A valid request is accepted: any 2xx (the exact status is CIBA-ACK-01's business).

    Generic: a valid request is accepted (the caller's row; CIBA §7.3 for the acknowledgement)."""
    status = exchange.response.status if exchange.response is not None else None
    if status is None or not 200 <= status < 300:
        body = exchange.response.text(300) if exchange.response is not None else exchange.error
        raise UnexpectedStatus(
            requirement=requirement,
            title="Valid request refused",
            expected="2xx with an acknowledgement",
            actual=f"HTTP {status}: {body}" if status is not None else body,
            exchanges=[exchange],
        )


@check("CIBA-AUTH-02", title="No auth_req_id for a request the endpoint does not define")
def no_acknowledgement(exchange: Exchange, *, requirement: str = "CIBA-AUTH-02") -> None:
    """CIBA §7.1: the client sends the authentication request as an HTTP POST with a form
    body; nothing else is defined for the endpoint, so a wrong method or body format may get
    any refusal in any form (a gateway's plain-text 404/405 included). Only an answer
    that starts a transaction (an acknowledgement with an auth_req_id) is wrong."""
    response = exchange.response
    if response is not None and 200 <= response.status < 300:
        if parse_acknowledgement(response) is not None:
            raise UnexpectedSuccess(
                requirement=requirement,
                title="auth_req_id issued for a request that is not a form POST",
                expected="any refusal",
                actual=f"HTTP {response.status} with an auth_req_id",
                exchanges=[exchange],
            )


@check("CIBA-AUTH-21", title="A parameter value the spec calls invalid is refused")
def invalid_value_refused(exchange: Exchange, *, requirement: str = "CIBA-AUTH-21") -> None:
    """CIBA §13: invalid_request is the answer to "an invalid value" of a parameter; without a
    MUST to refuse, accepting such a value is a warning (Verdict severity), not a silent pass."""
    response = exchange.response
    if response is not None and 200 <= response.status < 300:
        raise UnexpectedSuccess(
            requirement=requirement,
            title="An invalid parameter value was accepted",
            expected="400 invalid_request",
            actual=f"HTTP {response.status}",
            exchanges=[exchange],
        )


def describe_refusal(exchange: Exchange) -> str:
    """A short description of how a request was refused (for provider choices)."""
    response = exchange.response
    if response is None:
        return f"no answer ({exchange.error})"
    code = error_code(response)
    shape = f"JSON error {code}" if code else (response.content_type or "no content type")
    return f"HTTP {response.status}, {shape}"


@check("CIBA-ACK-06")
def auth_req_ids_unique(
    auth_req_ids: Collection[str],
    *,
    issued_before: Container[str] = (),
    requirement: str = "CIBA-ACK-06",
    exchanges: Iterable[Exchange] = (),
) -> None:
    """Each accepted request got its own auth_req_id: none repeats among `auth_req_ids` or
    was `issued_before` (the ids a session or a load run has seen so far).

    CIBA §7.3 (implied): auth_req_id identifies one authentication request."""
    counts = Counter(auth_req_ids)
    for value in counts:
        if value in issued_before:
            counts[value] += 1
    repeated = {value: n for value, n in counts.items() if n > 1}
    if repeated:
        raise InvalidMember(
            requirement=requirement,
            title="Several accepted requests got the same auth_req_id",
            expected=f"{len(auth_req_ids)} distinct values",
            actual=f"{len(set(auth_req_ids))} distinct values; "
            f"{sum(repeated.values())} requests share {len(repeated)} value(s)",
            exchanges=list(exchanges)[:3],
        )


class ReceivedCallbacks(Protocol):
    """What `no_notifications` reads of an inbox (client._inbox.NotificationInbox)."""

    def received(self, *, token: str | None = None) -> list[Notification]: ...


@check("CIBA-AERR-15")
def no_notifications(
    inbox: ReceivedCallbacks,
    tokens: Collection[str],
    *,
    requirement: str = "CIBA-AERR-15",
    exchanges: Iterable[Exchange] = (),
) -> None:
    """No ping or push arrived for rejected requests (their notification tokens).

    CIBA §7.2, §13 (implied): a refused request starts no transaction, so nothing is ever
    delivered for it."""
    arrived = [n for token in tokens for n in inbox.received(token=token)]
    if arrived:
        raise NotificationViolation(
            requirement=requirement,
            title="Notification sent for a rejected authentication request",
            expected="no callback for a request answered with an error",
            actual="; ".join(n.describe() for n in arrived[:3]),
            exchanges=list(exchanges)[:3],
        )


# --- discovery checks (CIBA §4) ------------------------------------------------------------


def _metadata_failure(
    kind: type[MissingMember] | type[InvalidMember],
    requirement: str,
    title: str,
    exchange: Exchange | None,
    **details: Any,
) -> MissingMember | InvalidMember:
    return kind(
        requirement=requirement,
        title=title,
        exchanges=[exchange] if exchange is not None else [],
        **details,
    )


@check("CIBA-DISC-01")
def delivery_modes_valid(
    document: Mapping[str, Any],
    *,
    requirement: str = "CIBA-DISC-01",
    exchange: Exchange | None = None,
) -> None:
    """backchannel_token_delivery_modes_supported is a non-empty array of poll/ping/push.

    CIBA §4: backchannel_token_delivery_modes_supported is REQUIRED, a JSON array of poll /
    ping / push."""
    modes = document.get("backchannel_token_delivery_modes_supported")
    if not isinstance(modes, list) or not modes:
        raise _metadata_failure(
            MissingMember,
            requirement,
            "backchannel_token_delivery_modes_supported missing or not a non-empty array",
            exchange,
            actual=repr(modes),
        )
    unknown = [m for m in modes if m not in DELIVERY_MODES]
    if unknown:
        raise _metadata_failure(
            InvalidMember,
            requirement,
            "backchannel_token_delivery_modes_supported lists unknown modes",
            exchange,
            expected="only poll, ping, push",
            actual=repr(unknown),
        )


@check("CIBA-DISC-02")
def backchannel_endpoint_https(
    document: Mapping[str, Any],
    *,
    requirement: str = "CIBA-DISC-02",
    exchange: Exchange | None = None,
    allow_loopback_http: bool = True,
) -> None:
    """backchannel_authentication_endpoint is an absolute https URL.

    Plain http is let through only on a loopback host (a local test provider such as the
    embedded reference provider), and only when `allow_loopback_http`.

    CIBA §4, §7: backchannel_authentication_endpoint is REQUIRED and MUST be an https URL."""
    url = document.get("backchannel_authentication_endpoint")
    if not isinstance(url, str) or not url:
        raise _metadata_failure(
            MissingMember,
            requirement,
            "backchannel_authentication_endpoint missing from the provider metadata",
            exchange,
            actual=repr(url),
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or not host or parts.scheme not in {"https", "http"}:
        raise _metadata_failure(
            InvalidMember,
            requirement,
            "backchannel_authentication_endpoint is not an absolute URL",
            exchange,
            actual=repr(url),
        )
    if parts.scheme != "https" and not (allow_loopback_http and host in LOOPBACK_HOSTS):
        raise _metadata_failure(
            InvalidMember,
            requirement,
            "backchannel_authentication_endpoint is not https",
            exchange,
            expected="https://...",
            actual=url,
        )


@check("CIBA-DISC-03")
def request_signing_algs_listed(
    document: Mapping[str, Any],
    *,
    requirement: str = "CIBA-DISC-03",
    exchange: Exchange | None = None,
) -> None:
    """backchannel_authentication_request_signing_alg_values_supported, when present, is an
    array of JWS alg names.

    CIBA §4: backchannel_authentication_request_signing_alg_values_supported is OPTIONAL, a
    JSON array of JWS algs."""
    name = "backchannel_authentication_request_signing_alg_values_supported"
    if name not in document:
        return
    algs = document[name]
    if not isinstance(algs, list) or not all(isinstance(a, str) and a for a in algs):
        raise _metadata_failure(
            InvalidMember,
            requirement,
            f"{name} is not an array of alg names",
            exchange,
            actual=repr(algs),
        )


@check("CIBA-DISC-04")
def request_signing_algs_asymmetric(
    document: Mapping[str, Any],
    *,
    requirement: str = "CIBA-DISC-04",
    exchange: Exchange | None = None,
) -> None:
    """The request-signing algs list holds neither none nor MAC algorithms.

    CIBA §4, §7.1.1: signed requests use asymmetric signatures; none and MAC algs MUST NOT be
    listed."""
    algs = document.get("backchannel_authentication_request_signing_alg_values_supported")
    if not isinstance(algs, list):
        return
    weak = [a for a in algs if isinstance(a, str) and (a.lower() == "none" or a.startswith("HS"))]
    if weak:
        raise _metadata_failure(
            InvalidMember,
            requirement,
            "Request-signing algs include none or MAC algorithms",
            exchange,
            expected="asymmetric JWS algs only",
            actual=repr(weak),
        )


@check("CIBA-DISC-05")
def user_code_parameter_boolean(
    document: Mapping[str, Any],
    *,
    requirement: str = "CIBA-DISC-05",
    exchange: Exchange | None = None,
) -> None:
    """backchannel_user_code_parameter_supported, when present, is a JSON boolean.

    CIBA §4: backchannel_user_code_parameter_supported is OPTIONAL, a JSON boolean."""
    name = "backchannel_user_code_parameter_supported"
    if name in document and not isinstance(document[name], bool):
        raise _metadata_failure(
            InvalidMember,
            requirement,
            f"{name} is not a JSON boolean",
            exchange,
            expected="true or false",
            actual=repr(document[name]),
        )


@check("CIBA-DISC-06")
def ciba_grant_advertised(
    document: Mapping[str, Any],
    *,
    requirement: str = "CIBA-DISC-06",
    exchange: Exchange | None = None,
) -> None:
    """With poll or ping advertised, grant_types_supported lists the CIBA grant.

    CIBA §4 (descriptive; the conformance suite requires it): grant_types_supported lists the
    CIBA grant."""
    modes = document.get("backchannel_token_delivery_modes_supported")
    if not isinstance(modes, list) or not {"poll", "ping"} & set(modes):
        return
    grants = document.get("grant_types_supported")
    if not isinstance(grants, list) or CIBA_GRANT not in grants:
        raise _metadata_failure(
            MissingMember,
            requirement,
            "grant_types_supported lacks the CIBA grant",
            exchange,
            expected=CIBA_GRANT,
            actual=repr(grants),
        )


@check("CIBA-DISC-08")
def mtls_alias_valid(
    document: Mapping[str, Any],
    *,
    requirement: str = "CIBA-DISC-08",
    exchange: Exchange | None = None,
) -> None:
    """An mtls_endpoint_aliases entry for the backchannel endpoint is an absolute https URL.

    RFC 8705 §5: mtls_endpoint_aliases values are absolute https URLs."""
    aliases = document.get("mtls_endpoint_aliases")
    if not isinstance(aliases, dict) or "backchannel_authentication_endpoint" not in aliases:
        return
    url = aliases["backchannel_authentication_endpoint"]
    if not isinstance(url, str) or not url.startswith("https://") or len(url) <= len("https://"):
        raise _metadata_failure(
            InvalidMember,
            requirement,
            "mtls_endpoint_aliases.backchannel_authentication_endpoint is not an https URL",
            exchange,
            actual=repr(url),
        )


@check("CIBA-DISC-09")
def issuer_matches(
    document: Mapping[str, Any],
    configured_issuer: str,
    *,
    requirement: str = "CIBA-DISC-09",
    exchange: Exchange | None = None,
) -> None:
    """The metadata issuer is the issuer the harness was configured with.

    The configuration drops a trailing slash from the issuer, so `X` and `X/` both match.

    OIDC Discovery §4.3: the issuer value MUST be identical to the issuer URL used for
    discovery."""
    issuer = document.get("issuer")
    configured = configured_issuer.rstrip("/")
    if not isinstance(issuer, str) or issuer not in {configured, configured + "/"}:
        raise _metadata_failure(
            InvalidMember,
            requirement,
            "Metadata issuer differs from the configured issuer",
            exchange,
            expected=configured,
            actual=repr(issuer),
        )


def metadata_document(exchange: Exchange) -> dict[str, Any] | None:
    """The discovery answer as a JSON object, or None."""
    if exchange.response is None or exchange.response.status != 200:
        return None
    return exchange.response.json_object()
