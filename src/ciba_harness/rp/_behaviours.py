"""The behaviours of the client test provider: one per test of the client plan.

A behaviour says what the provider answers to polls, what it sends to the client's
notification endpoint and how it builds the ID token. Times are short on purpose (intervals of
1 s, expiries of 2 s) so the whole plan runs in well under a minute; the two cases the spec
fixes at 5 s (no interval; a 5 s interval) cannot be shorter.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BEHAVIOURS", "Behaviour", "ID_TOKEN_VARIANTS", "NOTIFICATIONS"]

#: how the ID token of the transaction is built
ID_TOKEN_VARIANTS = frozenset(
    {
        "valid",
        "forged_signature",  # one bit of the signature flipped
        "foreign_kid",  # signed by a key the JWKS does not hold
        "alg_none",  # unsigned
        "wrong_iss",
        "wrong_aud",
        "expired",  # exp ten minutes ago
        "rotated_key",  # second flow: signed by a key published in the JWKS only from then on
        "missing_auth_req_id",  # push: no urn:openid:params:jwt:claim:auth_req_id
        "bad_at_hash",
        "bad_rt_hash",
        "missing_iss",
        "missing_aud",
        "missing_exp",
        "aud_array",  # aud = [client_id]: valid
        "alternate_alg",  # RS256 with a published RSA key, while ES256 is announced
        "secondary_aud",  # aud = [client_id, an untrusted audience]
    }
)
#: what goes to the client's notification endpoint (ping and push)
NOTIFICATIONS = frozenset(
    {
        "valid",
        "wrong_bearer_first",  # a callback with a wrong bearer, then after 0.5 s the valid one
        "no_bearer_first",  # a callback without Authorization, then the valid one
        "unknown_auth_req_id_first",  # right bearer, an auth_req_id the client never saw
        "twice",  # two pings back to back
        "error:access_denied",
        "error:transaction_failed",
    }
)


@dataclass(frozen=True)
class Behaviour:
    name: str
    mode: str  # poll, ping, push
    #: answers to successive polls; the last one repeats ("pending", "slow_down", "tokens",
    #: "access_denied", "error_with_tokens"); after expiry every poll gets expired_token
    polls: tuple[str, ...] = ("tokens",)
    interval: int | None = 1
    expires_in: int = 30
    #: seconds after expiry during which polls still get authorization_pending (a provider
    #: that never says expired_token in time: the client must keep expires_in itself)
    expiry_grace: float = 0.0
    id_token: str = "valid"
    notification: str = "valid"
    #: seconds between the acknowledgement and the ping or push
    notify_after: float = 0.15
    #: how many flows the driver starts for this test
    flows: int = 1
    #: seconds the token endpoint holds each answer (so duplicate requests overlap)
    token_delay: float = 0.0
    #: the acknowledgement: valid, missing_auth_req_id, missing_expires_in, error:<code>
    ack: str = "valid"


def _b(*args: Behaviour) -> dict[str, Behaviour]:
    return {b.name: b for b in args}


BEHAVIOURS: dict[str, Behaviour] = _b(
    Behaviour("poll_faithful", "poll", polls=("pending", "tokens")),
    Behaviour("poll_slow_down", "poll", polls=("pending", "slow_down", "tokens")),
    Behaviour("poll_interval_absent", "poll", polls=("pending", "tokens"), interval=None),
    Behaviour("poll_interval_5s", "poll", polls=("pending", "tokens"), interval=5),
    Behaviour("poll_expired", "poll", polls=("pending",), expires_in=2, expiry_grace=2.0),
    Behaviour("poll_denied", "poll", polls=("access_denied",)),
    Behaviour("poll_error_with_tokens", "poll", polls=("error_with_tokens",)),
    Behaviour("poll_invalid_request", "poll", polls=("invalid_request",)),
    Behaviour("poll_ack_missing_auth_req_id", "poll", ack="missing_auth_req_id"),
    Behaviour("poll_ack_missing_expires_in", "poll", ack="missing_expires_in"),
    Behaviour("poll_unknown_user_id", "poll", ack="error:unknown_user_id"),
    Behaviour("poll_forged_signature", "poll", id_token="forged_signature"),
    Behaviour("poll_foreign_kid", "poll", id_token="foreign_kid"),
    Behaviour("poll_alg_none", "poll", id_token="alg_none"),
    Behaviour("poll_wrong_iss", "poll", id_token="wrong_iss"),
    Behaviour("poll_wrong_aud", "poll", id_token="wrong_aud"),
    Behaviour("poll_expired_id_token", "poll", id_token="expired"),
    Behaviour("poll_missing_iss", "poll", id_token="missing_iss"),
    Behaviour("poll_missing_aud", "poll", id_token="missing_aud"),
    Behaviour("poll_missing_exp", "poll", id_token="missing_exp"),
    Behaviour("poll_secondary_aud", "poll", id_token="secondary_aud"),
    Behaviour("poll_aud_array", "poll", id_token="aud_array"),
    Behaviour("poll_alternate_alg", "poll", id_token="alternate_alg"),
    Behaviour("poll_rotated_key", "poll", id_token="rotated_key", flows=2),
    Behaviour("ping_faithful", "ping"),
    Behaviour("ping_wrong_bearer", "ping", notification="wrong_bearer_first"),
    Behaviour("ping_no_bearer", "ping", notification="no_bearer_first"),
    Behaviour("ping_unknown_auth_req_id", "ping", notification="unknown_auth_req_id_first"),
    Behaviour("ping_twice", "ping", notification="twice", token_delay=0.3),
    Behaviour("ping_two_flows", "ping", flows=2),
    Behaviour("push_faithful", "push"),
    Behaviour("push_wrong_bearer", "push", notification="wrong_bearer_first"),
    Behaviour("push_missing_auth_req_id", "push", id_token="missing_auth_req_id"),
    Behaviour("push_bad_at_hash", "push", id_token="bad_at_hash"),
    Behaviour("push_bad_rt_hash", "push", id_token="bad_rt_hash"),
    Behaviour("push_forged_signature", "push", id_token="forged_signature"),
    Behaviour("push_alg_none", "push", id_token="alg_none"),
    Behaviour("push_denied", "push", notification="error:access_denied"),
    Behaviour("push_transaction_failed", "push", notification="error:transaction_failed"),
)
