"""The named misbehaviours of the hostile provider, and the `ENDPOINT=B1[,B2...]` selection.

A selection gives each endpoint a list of behaviours: request n of that endpoint gets item n,
the last item repeats (`token=ok,hang`: the first token request is answered, every later one
hangs); a list ending in `*` starts over instead (`token=ok,ok,status_500,*`: every third
token request gets a 500). A behaviour that waits takes seconds after a colon (`slow:2.5`,
`trickle:0.1`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "BEHAVIOURS",
    "ENDPOINTS",
    "HTTP_ENDPOINTS",
    "Behaviour",
    "HostileSelectionError",
    "Step",
    "catalogue_markdown",
    "parse_selection",
]

HTTP_ENDPOINTS: tuple[str, ...] = ("discovery", "jwks", "backchannel", "token", "device")
ENDPOINTS: tuple[str, ...] = (*HTTP_ENDPOINTS, "notification")
_ALL_HTTP = frozenset(HTTP_ENDPOINTS)


class HostileSelectionError(ValueError):
    """A behaviour selection names an unknown endpoint or behaviour (message lists choices)."""


@dataclass(frozen=True)
class Behaviour:
    name: str
    endpoints: frozenset[str]
    description: str
    default_seconds: float | None = None  # set: the behaviour takes `:SECONDS`


CYCLE = "*"  # last item of a list that starts over


@dataclass(frozen=True)
class Step:
    """One behaviour as selected for one request."""

    name: str
    seconds: float | None = None

    def __str__(self) -> str:
        return self.name if self.seconds is None else f"{self.name}:{self.seconds:g}"


def _b(name: str, endpoints: Iterable[str], description: str, seconds: float | None = None) -> Behaviour:
    return Behaviour(name, frozenset(endpoints), description, seconds)


_NOTIFY = ("notification",)
_CATALOGUE: tuple[Behaviour, ...] = (
    _b("ok", ENDPOINTS, "the reference provider's own answer (or delivery)"),
    # --- any HTTP endpoint: transport -------------------------------------------------------
    _b("slow", _ALL_HTTP, "the real answer, after SECONDS (default 3)", 3.0),
    _b("hang", _ALL_HTTP, "reads the request, never answers (until the server stops)"),
    _b("trickle", _ALL_HTTP,
       "status and headers at once, then the real body one byte every SECONDS (default 0.25)",
       0.25),
    _b("trickle_headers", _ALL_HTTP,
       "the status line at once, then the headers one byte every SECONDS (default 0.25)", 0.25),
    _b("close", _ALL_HTTP, "reads the request, closes the connection without a byte"),
    _b("reset", _ALL_HTTP, "reads the request, resets the connection (TCP RST)"),
    _b("reset_mid_body", _ALL_HTTP,
       "headers and half the real body (Content-Length of all of it), then a TCP RST"),
    _b("truncated", _ALL_HTTP, "headers and half the real body, then a clean close (FIN)"),
    _b("not_http", _ALL_HTTP, "answers with an SSH banner instead of HTTP"),
    # --- any HTTP endpoint: content ---------------------------------------------------------
    _b("status_500", _ALL_HTTP, "HTTP 500 with a plain-text body"),
    _b("html", _ALL_HTTP, "HTTP 200 with an HTML login page"),
    _b("not_json", _ALL_HTTP, "HTTP 200, Content-Type application/json, a body cut mid-JSON"),
    _b("empty", _ALL_HTTP, "HTTP 200, Content-Type application/json, no body"),
    _b("huge", _ALL_HTTP, "HTTP 200 with an 8 MiB JSON body"),
    _b("wrong_content_type", _ALL_HTTP, "the real answer labelled text/plain"),
    _b("redirect_loop", _ALL_HTTP, "HTTP 302 to the URL that was asked for"),
    _b("deep_json", _ALL_HTTP, "HTTP 200, application/json, arrays nested 100000 deep"),
    _b("json_array", ("discovery", "jwks", "backchannel", "token"),
       "the real JSON object wrapped in an array"),
    # --- JSON of the wrong shape --------------------------------------------------------------
    _b("auth_req_id_number", ("backchannel",), "acknowledgement with auth_req_id as a number"),
    _b("missing_auth_req_id", ("backchannel",), "acknowledgement without auth_req_id"),
    _b("expires_in_negative", ("backchannel", "token"),
       "acknowledgement or token response with expires_in = -60"),
    _b("access_token_number", ("token",), "token response with access_token as a number"),
    _b("id_token_unparsable", ("token",), "token response whose id_token is not a JWT"),
    _b("id_token_unsigned", ("token",),
       "token response whose id_token has the same claims, alg none, no signature"),
    _b("id_token_bad_signature", ("token",), "token response whose id_token signature is broken"),
    _b("no_backchannel_endpoint", ("discovery",),
       "metadata without backchannel_authentication_endpoint (not a CIBA provider)"),
    _b("dead_endpoints", ("discovery",),
       "metadata whose backchannel and token endpoints are a closed loopback port"),
    # --- keys ---------------------------------------------------------------------------------
    _b("rotate", ("jwks",),
       "key rotation: every ID token is signed with a new key, the JWKS lists only the newest"),
    _b("foreign_keys", ("jwks",), "a JWKS whose only key signed nothing"),
    _b("empty_keys", ("jwks",), 'a JWKS {"keys": []}'),
    # --- notifications (ping and push callbacks of the provider) -----------------------------
    _b("never", _NOTIFY, "the callback is never sent (the provider believes it was)"),
    _b("late", _NOTIFY, "the callback is sent after SECONDS (default 5)", 5.0),
    _b("twice", _NOTIFY, "the callback is sent twice"),
    _b("unknown_auth_req_id", _NOTIFY,
       "first a callback for an auth_req_id nobody asked for (right bearer), then the real one"),
    _b("wrong_bearer", _NOTIFY, "the callback carries another bearer token"),
    _b("no_bearer", _NOTIFY, "the callback carries no Authorization header"),
    _b("flood", _NOTIFY,
       "60 junk callbacks (unknown bearers, malformed and oversized bodies), then the real one"),
    _b("garbage_body", _NOTIFY, "the real callback's body replaced by non-JSON bytes"),
    _b("deep_body", _NOTIFY, "the real callback's body replaced by arrays nested 100000 deep"),
    _b("oversized", _NOTIFY, "the real callback padded to a 1 MiB JSON body"),
)
BEHAVIOURS: Mapping[str, Behaviour] = {b.name: b for b in _CATALOGUE}


def _parse_step(endpoint: str, text: str) -> Step:
    name, colon, seconds_text = text.strip().partition(":")
    behaviour = BEHAVIOURS.get(name)
    if behaviour is None or endpoint not in behaviour.endpoints:
        choices = ", ".join(b.name for b in _CATALOGUE if endpoint in b.endpoints)
        raise HostileSelectionError(
            f"unknown behaviour {name!r} for endpoint {endpoint} (choose from: {choices})"
        )
    if not colon:
        return Step(name, behaviour.default_seconds)
    if behaviour.default_seconds is None:
        raise HostileSelectionError(f"behaviour {name} takes no seconds (got {text!r})")
    try:
        seconds = float(seconds_text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise HostileSelectionError(f"{text!r}: seconds must be a number from 0 to 3600")
    return Step(name, seconds)


def parse_selection(
    selection: Mapping[str, str] | Iterable[str],
) -> dict[str, tuple[Step, ...]]:
    """`{"token": "ok,hang"}` or `["token=ok,hang"]` as steps per endpoint; raises
    HostileSelectionError naming what is wrong."""
    if isinstance(selection, Mapping):
        items = list(selection.items())
    else:
        items = []
        for entry in selection:
            endpoint, equals, spec = entry.partition("=")
            if not equals:
                raise HostileSelectionError(f"{entry!r}: expected ENDPOINT=BEHAVIOUR[,BEHAVIOUR...]")
            items.append((endpoint, spec))
    steps: dict[str, tuple[Step, ...]] = {}
    for endpoint, spec in items:
        endpoint = endpoint.strip()
        if endpoint not in ENDPOINTS:
            raise HostileSelectionError(
                f"unknown endpoint {endpoint!r} (choose from: {', '.join(ENDPOINTS)})"
            )
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        cycle = bool(parts) and parts[-1] == CYCLE
        parts = parts[:-1] if cycle else parts
        if not parts:
            raise HostileSelectionError(f"endpoint {endpoint}: no behaviour given")
        steps[endpoint] = tuple(_parse_step(endpoint, p) for p in parts)
        if cycle:
            steps[endpoint] += (Step(CYCLE),)
    return steps


def catalogue_markdown() -> str:
    lines = ["| Behaviour | Endpoints | What the server does |", "|---|---|---|"]
    for behaviour in _CATALOGUE:
        endpoints = (
            "any HTTP endpoint"
            if behaviour.endpoints >= _ALL_HTTP and "notification" not in behaviour.endpoints
            else "all"
            if behaviour.endpoints == frozenset(ENDPOINTS)
            else ", ".join(e for e in ENDPOINTS if e in behaviour.endpoints)
        )
        lines.append(f"| `{behaviour.name}` | {endpoints} | {behaviour.description} |")
    return "\n".join(lines)
