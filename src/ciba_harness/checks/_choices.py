"""Provider choices: which option a provider took where the specs leave it free.

A latitude is not a verdict: a provider that rotates refresh tokens, omits `interval` or
answers a wrong HTTP method with a plain-text 404 passes. What it chose is still worth
reading, so checks and suites call `record_choice(latitude, choice, evidence)`; the pytest
plugin collects the choices of each test (also from pytest-xdist workers, in the test's
record) and results.json lists them as `provider_choices`, shown in the HTML report.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "LATITUDES",
    "collect_provider_choices",
    "record_choice",
    "recorded_choices",
    "reset_choices",
]

#: latitude id -> (human title, where the spec leaves the provider free)
LATITUDES: Mapping[str, tuple[str, str]] = {
    "refresh_token_rotation": (
        "Refresh-token rotation", "RFC 6749 §6: a new refresh token MAY be issued"),
    "refresh_token_issued": (
        "Refresh token issued with the CIBA grant", "CIBA §10.1.1 / RFC 6749 §5.1: OPTIONAL"),
    "unknown_scope": (
        "Unknown scope value", "RFC 6749 §3.3: the OP may ignore, grant or refuse it"),
    "empty_parameter": (
        "Parameter sent without a value", "RFC 6749 §3.1: treated as omitted"),
    "interval": (
        "interval in the acknowledgement", "CIBA §7.3: OPTIONAL (the client then uses 5 s)"),
    "slow_down": (
        "slow_down for fast polling", "CIBA §11: the OP MAY answer slow_down"),
    "after_expiry": (
        "Answer after expiry, once reported", "CIBA §11: expired_token; later polls undefined"),
    "after_denial": (
        "Answer after denial, once reported", "CIBA §11: access_denied; later polls undefined"),
    "invalid_client_status": (
        "invalid_client HTTP status", "CIBA §13: 401; RFC 6749 §5.2 allows 400 (A-01)"),
    "wrong_method_answer": (
        "Answer to a wrong HTTP method or body format", "CIBA §7.1: only POST forms are defined"),
    "registration_demands": (
        "Registration metadata the OP additionally demands", "RFC 7591 §2: OP policy"),
    "binding_message_policy": (
        "Binding-message policy", "CIBA §7.1: 'relatively short', limits left to the OP (A-16)"),
    "at_hash": (
        "at_hash in poll/ping ID tokens", "OIDC Core §3.1.3.6 / CIBA §10.1.1: OPTIONAL"),
    "acr": (
        "acr in the ID token", "CIBA §7.1: highly RECOMMENDED when acr_values was sent"),
    "id_token_alg": (
        "ID token signing algorithm", "OIDC Registration: id_token_signed_response_alg"),
    "keep_alive": (
        "Keep-alive connections", "RFC 9112 §9.3: either side may close an idle connection"),
    "requested_expiry": (
        "requested_expiry honoured", "CIBA §7.1: the OP MAY use it for expires_in"),
    "notification_token_syntax": (
        "client_notification_token out of syntax", "CIBA §7.1: client rule, OP reaction open"),
    "poll_client_notification_token": (
        "client_notification_token from a poll client", "CIBA §7.1: undefined (A-08)"),
    "user_code_unregistered": (
        "user_code from a client not registered for it", "CIBA §7.1.2: undefined (A-07)"),
    "hint_types": ("Hint types accepted", "CIBA §7.1: id_token_hint OPTIONAL; §7.2 leaves it open"),
    "scope_without_openid": (
        "scope without openid", "CIBA §7.1: undefined (A-04)"),
    "assertion_replay": (
        "Replayed client assertion (same jti)", "RFC 7523 §3: replay detection MAY be done"),
    "request_object_outside_params": (
        "Parameters both inside and outside the request object", "CIBA §7.1.1: undefined"),
    "request_uri": ("request_uri at the backchannel endpoint", "CIBA §7.1.1: undefined"),
    "request_jti_replay": (
        "Replayed request-object jti", "CIBA §7.1.1: re-use MAY be refused"),
    "registration_without_grant": (
        "Registration of a ping client without the CIBA grant", "CIBA §4: refuse or accept"),
    "ping_on_expiry": ("Ping on expiry", "CIBA §10.2: the OP MAY ping (A-13)"),
    "ping_retry": ("Ping retried after a client error", "CIBA §10.2: undefined (BB-139)"),
    "push_on_expiry": ("Push of expired_token", "CIBA §12: the OP MAY push it (A-15)"),
    "token_revocation_on_reuse": (
        "Tokens revoked when an auth_req_id is replayed", "RFC 6749 §4.1.2 analogue (A-11)"),
}

# per thread: tests started early run their bodies in background threads (_early.py)
_record = threading.local()


def _current() -> list[dict[str, str]]:
    if not hasattr(_record, "choices"):
        _record.choices = []
    choices: list[dict[str, str]] = _record.choices
    return choices


def record_choice(latitude: str, choice: str, evidence: str = "") -> None:
    """Note which option the provider took for `latitude` (a key of LATITUDES): no verdict.

    `evidence` is a short plain description of what was seen (never a secret or a token)."""
    if latitude not in LATITUDES:
        raise ValueError(f"unknown latitude {latitude!r}: add it to LATITUDES")
    entry = {"latitude": latitude, "choice": str(choice), "evidence": str(evidence)[:300]}
    if entry not in _current():
        _current().append(entry)


def recorded_choices() -> list[dict[str, str]]:
    """The choices recorded since the last reset (copies)."""
    return [dict(c) for c in _current()]


def reset_choices() -> list[dict[str, str]]:
    """Empty the record; returns what it held (the plugin calls this around each test)."""
    taken = recorded_choices()
    _current().clear()
    return taken


def collect_provider_choices(tests: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """results.json `provider_choices`: one entry per (latitude, observed option), with the
    tests that saw it, in the order of LATITUDES."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for test in tests:
        for choice in test.get("choices") or ():
            if not isinstance(choice, Mapping):
                continue
            latitude = str(choice.get("latitude", ""))
            option = str(choice.get("choice", ""))
            title, basis = LATITUDES.get(latitude, (latitude, ""))
            entry = merged.setdefault(
                (latitude, option),
                {
                    "latitude": latitude,
                    "title": title,
                    "basis": basis,
                    "choice": option,
                    "evidence": str(choice.get("evidence", "")),
                    "tests": [],
                },
            )
            nodeid = str(test.get("nodeid", ""))
            if nodeid and nodeid not in entry["tests"]:
                entry["tests"].append(nodeid)
    order = {name: index for index, name in enumerate(LATITUDES)}
    return sorted(merged.values(), key=lambda e: (order.get(e["latitude"], len(order)),
                                                  e["latitude"], e["choice"]))
