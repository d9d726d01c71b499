"""Client-side checks: one per `CIBA-RP-nn` requirement, on what the client test provider
recorded (`Recording`) and what the client concluded (`FlowOutcome`).

Same machinery as the provider checks: registered with `@check`, raising a typed
`CheckFailure`, severity chosen by the caller through `CheckRunner`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise

from ciba_harness.checks._registry import check
from ciba_harness.core._errors import CheckFailure
from ciba_harness.rp._driver import FlowOutcome
from ciba_harness.rp._provider import (
    CIBA_GRANT,
    FORGED_SUB,
    Callback,
    RecordedRequest,
    Recording,
    Transaction,
)

__all__ = ["ClientViolation", "TIME_TOLERANCE"]

#: timing tolerance of interval checks (arrival times are measured at the provider)
TIME_TOLERANCE = 0.25
EXPIRY_TOLERANCE = 0.5
HINTS = ("login_hint_token", "id_token_hint", "login_hint")
B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: token endpoint errors after which polling goes on (every other error is terminal)
CONTINUE_ERRORS = {"authorization_pending", "slow_down"}


class ClientViolation(CheckFailure):
    kind = "client violation"


def _fail(requirement: str, title: str, *, requests: Iterable[RecordedRequest] = (),
          callbacks: Iterable[Callback] = (), expected: object = None,
          actual: object = None) -> ClientViolation:
    exchanges = [r.exchange for r in requests if r.exchange is not None]
    exchanges += [c.exchange for c in callbacks if c.exchange is not None]
    return ClientViolation(requirement=requirement, title=title, exchanges=exchanges[-3:],
                           expected=expected, actual=actual)


def _polls_of(run: Recording, txn: Transaction) -> list[RecordedRequest]:
    return [r for r in run.of_kind("token") if r.param("auth_req_id") == txn.auth_req_id]


def _elapsed(run: Recording, at: float) -> str:
    return f"{at - run.started:.2f} s into the test"


# --- authentication request (§7.1) ------------------------------------------------------


@check("CIBA-RP-01")
def rp_auth_request_is_form_post(run: Recording, *, requirement: str = "CIBA-RP-01") -> None:
    """The authentication request is an HTTP POST with a form-encoded body.

    CIBA §7.1: an "HTTP POST" request with the parameters application/x-www-form-urlencoded.
    """
    for record in run.of_kind("backchannel"):
        if record.method != "POST" or record.encoding != "form":
            raise _fail(requirement, "Authentication request is not a form-encoded POST",
                        expected="POST, application/x-www-form-urlencoded",
                        actual=f"{record.method}, {record.content_type or 'no content type'}",
                        requests=[record])


@check("CIBA-RP-02")
def rp_scope_has_openid(run: Recording, *, requirement: str = "CIBA-RP-02") -> None:
    """scope is present and contains openid.

    CIBA §7.1: the CIBA authentication request MUST contain the openid scope value.
    """
    for record in run.of_kind("backchannel"):
        if "openid" not in (record.param("scope") or "").split():
            raise _fail(requirement, "Authentication request without the openid scope",
                        expected="scope containing openid", actual=repr(record.param("scope")),
                        requests=[record])


@check("CIBA-RP-03")
def rp_exactly_one_hint(run: Recording, *, requirement: str = "CIBA-RP-03") -> None:
    """Exactly one of login_hint_token, id_token_hint, login_hint.

    CIBA §7.1: it is REQUIRED that Clients provide one (and only one) of the hints.
    """
    for record in run.of_kind("backchannel"):
        sent = [h for h in HINTS if h in record.params]
        if len(sent) != 1:
            raise _fail(requirement, "Authentication request does not carry exactly one hint",
                        expected="one of " + ", ".join(HINTS), actual=sent or "none",
                        requests=[record])


@check("CIBA-RP-04")
def rp_client_authenticated(run: Recording, *, requirement: str = "CIBA-RP-04") -> None:
    """Every backchannel and token request authenticates with the registered method.

    CIBA §7.1: the Client MUST authenticate using the method registered for its client_id;
    RFC 6749 §3.2.1 for the token endpoint.
    """
    for record in run.requests:
        if record.kind in ("backchannel", "token") and not record.auth_ok:
            raise _fail(requirement, "Request without valid client authentication",
                        expected="the registered method with valid credentials",
                        actual=f"{record.auth_method} for client_id {record.client_id!r} "
                        "(unknown client, wrong secret or another method)",
                        requests=[record])


@check("CIBA-RP-05")
def rp_notification_token_syntax(run: Recording, *, requirement: str = "CIBA-RP-05") -> None:
    """Ping/push requests carry client_notification_token: <= 1024 chars, b64token.

    CIBA §7.1: REQUIRED for Ping and Push; MUST NOT exceed 1024 characters; MUST conform to
    the Bearer credential syntax of RFC 6750 §2.1.
    """
    for txn in run.transactions:
        if txn.client.mode == "poll":
            continue
        token = txn.notification_token
        if not token or len(token) > 1024 or not B64TOKEN.fullmatch(token):
            shown = "absent" if not token else f"{len(token)} characters"
            raise _fail(requirement, "client_notification_token absent, too long or not a "
                        "b64token", expected="1 to 1024 characters of RFC 6750 b64token",
                        actual=shown)


def estimated_bits(token: str) -> float:
    """Bits of a token from its length and the smallest standard alphabet that holds it."""
    if UUID.fullmatch(token):
        return 122.0
    alphabets = [
        (r"[0-9]", 10), (r"[0-9a-f]", 16), (r"[0-9A-F]", 16), (r"[A-Za-z0-9]", 62),
        (r"[A-Za-z0-9_-]", 64), (r"[A-Za-z0-9\-._~+/=]", 67),
    ]
    size = next((n for pattern, n in alphabets if re.fullmatch(f"{pattern}*", token)), 67)
    counts = Counter(token)
    shannon = -sum(c / len(token) * math.log2(c / len(token)) for c in counts.values())
    if len(token) >= 16 and shannon < 2.0:  # long but repetitive
        return shannon * len(token)
    return len(token) * math.log2(size)


@check("CIBA-RP-06")
def rp_notification_token_entropy(run: Recording, *, minimum_bits: float = 128.0,
                                  requirement: str = "CIBA-RP-06") -> None:
    """client_notification_token carries at least 128 bits of entropy.

    CIBA §7.1: Clients MUST ensure sufficient entropy (a minimum of 128 bits).
    """
    for txn in run.transactions:
        token = txn.notification_token
        if txn.client.mode == "poll" or not token:
            continue
        bits = estimated_bits(token)
        if bits < minimum_bits:
            raise _fail(requirement, "client_notification_token entropy below 128 bits",
                        expected=f">= {minimum_bits:.0f} bits",
                        actual=f"about {bits:.0f} bits ({len(token)} characters)")


@check("CIBA-RP-07")
def rp_notification_token_fresh(tokens: Sequence[str], *,
                                requirement: str = "CIBA-RP-07") -> None:
    """No client_notification_token is used for two authentication requests.

    CIBA §10.2 / §10.3.1: the token MUST be associated with the auth_req_id (implied).
    """
    repeated = [t for t, n in Counter(tokens).items() if n > 1]
    if repeated:
        raise _fail(requirement, "client_notification_token reused across requests",
                    expected="a fresh token per authentication request",
                    actual=f"{len(repeated)} token(s) sent more than once in "
                    f"{len(tokens)} requests")


@check("CIBA-RP-08")
def rp_binding_message_sent(run: Recording, expected: Sequence[str], *,
                            requirement: str = "CIBA-RP-08") -> None:
    """The binding_message the client was asked to show is sent.

    FAPI-CIBA client provisions: a binding_message or enough authorization context; CIBA §7.1.
    """
    sent = [r.param("binding_message") for r in run.of_kind("backchannel")]
    missing = [m for m in expected if m not in sent]
    if missing:
        raise _fail(requirement, "binding_message not sent with the authentication request",
                    expected=list(expected), actual=sent,
                    requests=run.of_kind("backchannel"))


@check("CIBA-RP-09")
def rp_failed_acknowledgement_ends_flow(run: Recording, outcome: FlowOutcome, *,
                                        requirement: str = "CIBA-RP-09") -> None:
    """A malformed or refused acknowledgement ends the flow with a refusal.

    CIBA §7.3: auth_req_id and expires_in are REQUIRED; §13: an error response.
    """
    polls = run.of_kind("token")
    if polls:
        raise _fail(requirement, "Polled after a malformed or refused acknowledgement",
                    expected="no token request", actual=f"{len(polls)} token request(s)",
                    requests=[*run.of_kind("backchannel")[:1], polls[0]])
    if outcome.outcome != "refused":
        raise _fail(requirement, "Malformed or refused acknowledgement not reported as a "
                    "refusal", expected="refused", actual=outcome.describe(),
                    requests=run.of_kind("backchannel")[:1])


# --- token requests and polling ---------------------------------------------------------


@check("CIBA-RP-10")
def rp_token_request_well_formed(run: Recording, *, requirement: str = "CIBA-RP-10") -> None:
    """Token requests: POST, form-encoded, the CIBA grant type, an auth_req_id.

    CIBA §10.1 (grant_type urn:openid:params:grant-type:ciba, auth_req_id); RFC 6749 §3.2.
    """
    for record in run.of_kind("token"):
        problems = []
        if record.method != "POST" or record.encoding != "form":
            problems.append(f"{record.method} {record.content_type or 'no content type'}")
        if record.param("grant_type") != CIBA_GRANT:
            problems.append(f"grant_type={record.param('grant_type')!r}")
        if not record.param("auth_req_id"):
            problems.append("no auth_req_id")
        if problems:
            raise _fail(requirement, "Malformed token request",
                        expected=f"form POST with grant_type={CIBA_GRANT} and auth_req_id",
                        actual="; ".join(problems), requests=[record])


def _gaps(polls: Sequence[RecordedRequest]) -> list[tuple[RecordedRequest, float]]:
    return [(later, later.arrived - earlier.arrived) for earlier, later in pairwise(polls)]


@check("CIBA-RP-12")
def rp_poll_interval_kept(run: Recording, *, requirement: str = "CIBA-RP-12") -> None:
    """Polls are never closer together than the announced interval.

    CIBA §7.3: the minimum time the Client MUST wait between polling requests.
    """
    for txn in run.transactions:
        if txn.interval is None or txn.client.mode != "poll":
            continue
        for record, gap in _gaps(_polls_of(run, txn)):
            if gap < txn.interval - TIME_TOLERANCE:
                raise _fail(requirement, "Polled faster than the announced interval",
                            expected=f">= {txn.interval} s between polls",
                            actual=f"{gap:.2f} s ({_elapsed(run, record.arrived)})",
                            requests=[record])


@check("CIBA-RP-13")
def rp_default_interval_kept(run: Recording, *, requirement: str = "CIBA-RP-13") -> None:
    """Without an announced interval, polls are at least 5 s apart.

    CIBA §7.3: if no value is provided, clients MUST use 5 as the default value.
    """
    for txn in run.transactions:
        if txn.interval is not None or txn.client.mode != "poll":
            continue
        for record, gap in _gaps(_polls_of(run, txn)):
            if gap < 5 - TIME_TOLERANCE:
                raise _fail(requirement, "Polled faster than the default 5 s interval",
                            expected=">= 5 s between polls (no interval announced)",
                            actual=f"{gap:.2f} s ({_elapsed(run, record.arrived)})",
                            requests=[record])


@check("CIBA-RP-14")
def rp_slow_down_honoured(run: Recording, *, requirement: str = "CIBA-RP-14") -> None:
    """After slow_down, the client's interval grows by at least 5 s (for every later poll).

    CIBA §11: the interval MUST be increased by at least 5 seconds for this and all
    subsequent requests.
    """
    for txn in run.transactions:
        polls = _polls_of(run, txn)
        base = float(txn.interval if txn.interval is not None else 5)
        for index, record in enumerate(polls):
            if record.answer.get("error") != "slow_down":
                continue
            if index > 0:  # the client's own pace, so a CIBA-RP-12 breach is not blamed here
                base = min(base, record.arrived - polls[index - 1].arrived)
            for later, gap in _gaps(polls[index:]):
                if gap < base + 5 - TIME_TOLERANCE:
                    raise _fail(requirement, "Interval not increased by 5 s after slow_down",
                                expected=f">= {base + 5:.1f} s after slow_down",
                                actual=f"{gap:.2f} s", requests=[record, later])


@check("CIBA-RP-15")
def rp_no_poll_after_expiry(run: Recording, *, requirement: str = "CIBA-RP-15") -> None:
    """No poll after expires_in has elapsed.

    CIBA §7.3 expires_in; §11 expired_token: a new Authentication Request is needed.
    """
    for txn in run.transactions:
        limit = txn.acked_at + txn.expires_in + EXPIRY_TOLERANCE
        late = [r for r in _polls_of(run, txn) if r.arrived > limit]
        if late:
            raise _fail(requirement, "Polled after the auth_req_id expired",
                        expected=f"no poll more than {txn.expires_in} s after the "
                        "acknowledgement", actual=f"{len(late)} poll(s), the first "
                        f"{late[0].arrived - txn.acked_at:.2f} s after it", requests=late[:1])


@check("CIBA-RP-16")
def rp_no_poll_after_terminal_error(run: Recording, *, requirement: str = "CIBA-RP-16") -> None:
    """A poll-mode client stops polling after an error other than pending or slow_down.

    CIBA §11: access_denied, expired_token, invalid_grant, invalid_request... end it.
    """
    for txn in run.transactions:
        if txn.client.mode != "poll":
            continue
        polls = _polls_of(run, txn)
        for index, record in enumerate(polls):
            error = record.answer.get("error")
            if error and error not in CONTINUE_ERRORS and index + 1 < len(polls):
                raise _fail(requirement, "Polled again after a terminal error",
                            expected="no poll after " + str(record.answer.get("error")),
                            actual=f"{len(polls) - index - 1} more poll(s)",
                            requests=[record, polls[index + 1]])


@check("CIBA-RP-17")
def rp_no_overlapping_token_requests(run: Recording, *,
                                     requirement: str = "CIBA-RP-17") -> None:
    """No two token requests for one auth_req_id are in flight at the same time.

    CIBA §10.1: no new poll before the previous one is answered (CIBA-TOKEN-10).
    """
    for txn in run.transactions:
        polls = sorted(_polls_of(run, txn), key=lambda r: r.arrived)
        for earlier, later in pairwise(polls):
            if later.arrived < (earlier.finished or later.arrived):
                raise _fail(requirement, "Two token requests for one auth_req_id overlap",
                            expected="one request at a time",
                            actual=f"the second arrived {earlier.finished - later.arrived:.2f}"
                            " s before the first was answered", requests=[earlier, later])


# --- callbacks -----------------------------------------------------------------------------


@check("CIBA-RP-20")
def rp_callback_answered_204(run: Recording, concluded: Mapping[str, float] | None = None, *,
                             requirement: str = "CIBA-RP-20") -> None:
    """A valid ping or push is answered 204 (200 tolerated).

    CIBA §10.2 / §10.3.1: the endpoint SHOULD respond 204 No Content (200 is accepted).
    `concluded`: auth_req_id -> when the client reported its outcome; a callback sent after
    that finds a transaction the client has closed, so its answer is not judged."""
    for callback in run.callbacks:
        closed = (concluded or {}).get(callback.auth_req_id)
        if closed is not None and callback.sent > closed:
            continue
        if callback.label == "valid" and callback.status not in (200, 204):
            raise _fail(requirement, "Valid callback not answered 204 or 200",
                        expected="204 No Content (or 200)",
                        actual=callback.status if callback.status else callback.error,
                        callbacks=[callback])


def _token_requests_between(run: Recording, start: float, end: float) -> list[RecordedRequest]:
    return [r for r in run.of_kind("token") if start <= r.arrived < end]


@check("CIBA-RP-21")
def rp_wrong_bearer_ping_ignored(run: Recording, *, requirement: str = "CIBA-RP-21") -> None:
    """A ping with a wrong bearer token is not followed by a token request.

    CIBA §10.2: the Client MUST verify the client_notification_token.
    """
    for index, callback in enumerate(run.callbacks):
        if callback.label != "wrong_bearer" or callback.kind != "ping":
            continue
        later = [c.sent for c in run.callbacks[index + 1:]]
        acted = _token_requests_between(run, callback.sent, later[0] if later else math.inf)
        if acted:
            raise _fail(requirement, "Acted on a ping with a wrong bearer token",
                        expected="no token request until a correctly authenticated ping",
                        actual=f"{len(acted)} token request(s) after the forged ping",
                        requests=acted[:1], callbacks=[callback])


@check("CIBA-RP-22")
def rp_invalid_bearer_answered_401(run: Recording, *, requirement: str = "CIBA-RP-22") -> None:
    """A callback with an invalid bearer token is answered 401.

    CIBA §10.2 / §10.3.1: the Client SHOULD respond with HTTP 401 Unauthorized.
    """
    for callback in run.callbacks:
        if callback.label == "wrong_bearer" and callback.status != 401:
            raise _fail(requirement, "Callback with a wrong bearer token not answered 401",
                        expected="401 Unauthorized",
                        actual=callback.status if callback.status else callback.error,
                        callbacks=[callback])


@check("CIBA-RP-23")
def rp_foreign_ping_ignored(run: Recording, *, requirement: str = "CIBA-RP-23") -> None:
    """A ping naming an auth_req_id the client never started is not redeemed.

    CIBA §7.4: the Client MUST keep the auth_req_id to validate Ping and Push callbacks.
    """
    foreign = {c.auth_req_id for c in run.callbacks if c.label == "unknown_auth_req_id"}
    redeemed = [r for r in run.of_kind("token") if r.param("auth_req_id") in foreign]
    if redeemed:
        raise _fail(requirement, "Redeemed an auth_req_id the client never started",
                    expected="the ping ignored (the auth_req_id is not one of the client's)",
                    actual="a token request for it", requests=redeemed[:1])


@check("CIBA-RP-30")
def rp_forged_push_refused(outcome: FlowOutcome, expected_sub: str, *,
                           requirement: str = "CIBA-RP-30") -> None:
    """Tokens pushed with a wrong bearer token are not used.

    CIBA §10.3.1: the Client MUST verify the client_notification_token of the Push callback.
    """
    if outcome.outcome == "tokens" and outcome.sub == FORGED_SUB:
        raise _fail(requirement, "Accepted tokens pushed with a wrong bearer token",
                    expected=f"tokens for {expected_sub!r} from the authenticated push",
                    actual=outcome.describe())
    if outcome.outcome != "tokens" or outcome.sub != expected_sub:
        raise _fail(requirement, "The authenticated push after a forged one was not accepted",
                    expected=f"tokens for {expected_sub!r}", actual=outcome.describe())


@check("CIBA-RP-34")
def rp_push_error_ends_flow(run: Recording, outcome: FlowOutcome, *, within: float = 2.0,
                            requirement: str = "CIBA-RP-34") -> None:
    """A push error makes the client report a refusal at once.

    CIBA §12: the error is delivered to the Client Notification Endpoint.
    """
    errors = [c for c in run.callbacks if c.label == "error"]
    if not errors:
        raise _fail(requirement, "The error push was not delivered",
                    actual=run.callbacks[-1].error if run.callbacks else "no callback")
    if outcome.outcome != "refused":
        raise _fail(requirement, "Push error not reported as a refusal",
                    expected="refused", actual=outcome.describe(), callbacks=errors)
    late = outcome.concluded - errors[0].answered
    if late > within:
        raise _fail(requirement, "Push error reported late (waited for a timeout?)",
                    expected=f"a refusal within {within:.0f} s of the error push",
                    actual=f"{late:.1f} s", callbacks=errors)


# --- tokens -----------------------------------------------------------------------------


@check(title="The client refuses the tokens")
def rp_tokens_refused(outcome: FlowOutcome, *, what: str, requirement: str) -> None:
    """The client does not accept tokens it must refuse.

    OIDC Core §3.1.3.7 and CIBA §10.3.1 (the requirement is chosen by the caller).
    """
    if outcome.outcome == "tokens":
        raise _fail(requirement, f"Accepted {what}", expected="refused",
                    actual=outcome.describe())
    if outcome.outcome != "refused":
        raise _fail(requirement, "The client reached no conclusion", expected="refused",
                    actual=outcome.describe())


@check("CIBA-RP-48")
def rp_tokens_accepted(outcome: FlowOutcome, expected_sub: str, *,
                       requirement: str = "CIBA-RP-48") -> None:
    """A valid token response is accepted for the right user.

    CIBA §10.1.1; OIDC Core §3.1.3.7 (no nonce is demanded: none was sent).
    """
    if outcome.outcome != "tokens" or outcome.sub != expected_sub:
        raise _fail(requirement, "A valid token response was not accepted",
                    expected=f"got tokens for sub {expected_sub!r}", actual=outcome.describe())
