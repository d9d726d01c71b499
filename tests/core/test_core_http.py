"""_http: the curl reproducer is shell-safe and every rendering of an exchange masks secrets."""

from __future__ import annotations

import json
import shlex
from urllib.parse import parse_qsl, quote_plus

import pytest

from ciba_harness import (
    BackchannelParams,
    ClientAuthentication,
    ClientConfig,
    Exchange,
    HttpRequest,
    HttpResponse,
    ProviderMetadata,
    build_backchannel_request,
    build_token_request,
    redact,
    to_curl,
)
from ciba_harness.core._http import REDACTED, form_body

SECRET = "s3cr3t-Value-0123456789"
ACCESS_TOKEN = "at-" + "A" * 60
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "B" * 700 + "." + "C" * 342
REFRESH_TOKEN = "rt-" + "D" * 60


def test_form_body_keeps_order_and_repeats() -> None:
    body = form_body([("scope", "openid"), ("login_hint", "a b"), ("scope", "email")])
    assert body == b"scope=openid&login_hint=a+b&scope=email"
    request = HttpRequest.form_post("https://op/x", [("b", "1"), ("a", "2"), ("b", "3")])
    assert request.form_fields() == [("b", "1"), ("a", "2"), ("b", "3")]
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert HttpRequest("POST", "https://op/x", body=b"a=1").form_fields() == []


def test_response_helpers() -> None:
    response = HttpResponse(
        200, (("Content-Type", "Application/JSON; charset=utf-8"),), b'{"a": 1}'
    )
    assert response.content_type == "application/json"
    assert response.header("CONTENT-TYPE") == "Application/JSON; charset=utf-8"
    assert response.json_object() == {"a": 1}
    assert HttpResponse(200, (), b"[1]").json_object() is None
    assert HttpResponse(200, (), b"<html>").json_object() is None
    assert HttpResponse(200, (), b"\xff\xfe").json_object() is None
    long = HttpResponse(200, (), b"x" * 3000)
    assert long.text(10) == "x" * 10 + "…"


NASTY_VALUES = [
    "it's",
    'say "hi"',
    "$(rm -rf /)",
    "`id`",
    "a;b|c&d",
    "line\nbreak",
    "back\\slash",
    "ünïcode ✓",
    "*?[glob]",
    "",
]


@pytest.mark.parametrize("value", NASTY_VALUES)
def test_curl_round_trips_through_shlex(value: str) -> None:
    request = HttpRequest(
        "POST",
        f"https://op.example.com/path?q={quote_plus(value)}&x=1",
        (("X-Note", value), ("Content-Type", "application/json")),
        json.dumps({"binding_message": value}).encode(),
    )
    argv = shlex.split(to_curl(request))
    assert argv[:4] == ["curl", "-i", "-X", "POST"]
    assert argv[4] == request.url
    assert argv[5:9] == ["-H", f"X-Note: {value}", "-H", "Content-Type: application/json"]
    assert argv[9] == "--data-raw"
    assert json.loads(argv[10]) == {"binding_message": value}
    assert len(argv) == 11


def test_curl_form_body_round_trips() -> None:
    fields = [("login_hint", "o'brien & co"), ("binding_message", "$HOME `x`"), ("scope", "openid")]
    request = HttpRequest.form_post("https://op.example.com/bc", fields)
    argv = shlex.split(to_curl(request))
    assert parse_qsl(argv[argv.index("--data-raw") + 1]) == fields
    assert "-H" in argv and "Content-Type: application/x-www-form-urlencoded" in argv


def test_curl_without_body_has_no_data() -> None:
    argv = shlex.split(to_curl(HttpRequest("GET", "https://op/.well-known/openid-configuration")))
    assert argv == ["curl", "-i", "-X", "GET", "https://op/.well-known/openid-configuration"]


def test_redact_masks_longest_first_and_skips_tiny_values() -> None:
    assert redact("abc abcdef", ["abcdef", "abcd"]) == f"abc {REDACTED}"
    assert redact("a b c", ["a"]) == "a b c"  # too short to mask without mangling text


def everything(exchange: Exchange, extra: tuple[str, ...] = ()) -> str:
    """Every rendering of an exchange, joined."""
    return "\n".join(
        [
            exchange.describe(extra),
            json.dumps(exchange.to_dict(extra)),
            to_curl(exchange.request, extra),
        ]
    )


def basic_client(method: str = "client_secret_post", secret: str = SECRET) -> ClientConfig:
    return ClientConfig(
        name="c", client_id="client-1", auth_method=method,  # type: ignore[arg-type]
        delivery_mode="poll", client_secret=secret,
    )


def test_authorization_header_is_masked() -> None:
    request = HttpRequest(
        "POST", "https://op/token", (("Authorization", "Basic Y2xpZW50OnNlY3JldA=="),)
    )
    rendered = everything(Exchange(request))
    assert "Y2xpZW50OnNlY3JldA" not in rendered
    assert f"Authorization: Basic {REDACTED}" in rendered
    bearer = HttpRequest("GET", "https://op/x", (("authorization", "Bearer tok-123456"),))
    assert "tok-123456" not in everything(Exchange(bearer))


def test_secret_form_fields_are_masked_even_when_not_configured() -> None:
    request = HttpRequest.form_post(
        "https://op/token",
        [
            ("client_id", "client-1"),
            ("client_secret", "unlisted-secret-value"),
            ("client_assertion", "eyJ.unlisted.assertion"),
            ("grant_type", "urn:openid:params:grant-type:ciba"),
        ],
    )
    rendered = everything(Exchange(request))
    assert "unlisted-secret-value" not in rendered
    assert "unlisted.assertion" not in rendered
    assert "client-1" in rendered  # non-secret fields stay readable
    assert "grant-type%3Aciba" in rendered or "grant-type:ciba" in rendered


def test_configured_secrets_are_masked_anywhere() -> None:
    request = HttpRequest(
        "POST",
        f"https://op/x?debug={SECRET}",
        (("X-Api-Key", SECRET),),
        json.dumps({"note": f"the secret is {SECRET}"}).encode(),
        frozenset({SECRET}),
    )
    response = HttpResponse(
        400,
        (("Content-Type", "application/json"), ("WWW-Authenticate", f"Basic realm={SECRET}")),
        json.dumps({"error": "invalid_client", "error_description": f"bad {SECRET}"}).encode(),
    )
    exchange = Exchange(request, response, error=f"oops {SECRET}")
    assert SECRET not in everything(exchange)
    # Secrets passed by the caller (the config's) are masked too.
    plain = Exchange(HttpRequest("GET", f"https://op/x?k={SECRET}"))
    assert SECRET in plain.request.url
    assert SECRET not in everything(plain, (SECRET,))


def test_secrets_with_special_characters_are_masked_when_url_encoded(
    metadata: ProviderMetadata,
) -> None:
    secret = "p@ss w0rd&=/+!x"
    client = basic_client("client_secret_post", secret)
    params = BackchannelParams(login_hint="alice")
    for body_format in ("form", "query", "json"):
        request = build_backchannel_request(client, metadata, params, body_format=body_format)
        rendered = everything(Exchange(request))
        for encoded in (secret, quote_plus(secret), quote_plus(secret, safe="")):
            assert encoded not in rendered, (body_format, rendered)


def test_query_string_secret_fields_are_masked(metadata: ProviderMetadata) -> None:
    client = basic_client()
    request = build_token_request(
        client,
        metadata,
        "auth-req-1",
        auth=ClientAuthentication(secret="other-secret-not-configured"),
        body_format="query",
    )
    assert "other-secret-not-configured" in request.url
    assert "other-secret-not-configured" not in everything(Exchange(request))


def token_response(**extra: str) -> HttpResponse:
    body = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "id_token": ID_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "expires_in": 300,
        **extra,
    }
    return HttpResponse(
        200, (("Content-Type", "application/json"), ("Cache-Control", "no-store")),
        json.dumps(body).encode(),
    )


@pytest.mark.parametrize("padding", [0, 5000], ids=["short", "longer-than-the-preview"])
def test_token_response_tokens_are_never_shown_in_full(padding: int) -> None:
    response = token_response(note="n" * padding)
    exchange = Exchange(HttpRequest("POST", "https://op/token"), response)
    rendered = everything(exchange)
    for token in (ACCESS_TOKEN, ID_TOKEN, REFRESH_TOKEN):
        assert token not in rendered
        assert token[:40] not in rendered
    assert "Bearer" in rendered  # the rest of the body stays readable
    assert "no-store" in exchange.describe()


def test_token_in_a_body_that_is_not_valid_json_is_masked() -> None:
    # A broken JSON body (trailing comma) carrying a token where the preview cuts it.
    body = ('{"note": "' + "n" * 1900 + '", "access_token": "' + ACCESS_TOKEN + '",}').encode()
    assert body.index(ACCESS_TOKEN.encode()) < 2000 - 20
    response = HttpResponse(200, (("Content-Type", "application/json"),), body)
    rendered = everything(Exchange(HttpRequest("POST", "https://op/token"), response))
    assert ACCESS_TOKEN[:20] not in rendered
    assert "access_token" in rendered


def test_secret_straddling_the_preview_limit_is_not_shown() -> None:
    body = ("x" * 1990 + SECRET).encode()
    response = HttpResponse(500, (("Content-Type", "text/plain"),), body)
    exchange = Exchange(HttpRequest("GET", "https://op/x", secrets=frozenset({SECRET})), response)
    rendered = everything(exchange)
    assert SECRET[:10] not in rendered


def test_describe_and_to_dict_show_the_evidence() -> None:
    request = HttpRequest.form_post(
        "https://op/bc", [("login_hint", "alice")], secrets=[SECRET]
    )
    response = HttpResponse(
        400,
        (("Content-Type", "application/json"), ("X-Internal", "hidden-in-describe")),
        b'{"error":"invalid_request"}',
    )
    exchange = Exchange(request, response, elapsed=0.25, label="backchannel")
    text = exchange.describe()
    assert text.splitlines()[0] == "> POST https://op/bc"
    assert "> login_hint=alice" in text
    assert "< 400 (250 ms)" in text
    assert "invalid_request" in text
    assert "hidden-in-describe" not in text  # only the headers that matter
    data = exchange.to_dict()
    assert data["label"] == "backchannel"
    assert data["response"]["status"] == 400
    assert data["elapsed_ms"] == 250.0
    assert data["curl"].startswith("curl -i -X POST")
    json.dumps(data)  # JSON-ready
    failed = Exchange(request, error="no answer within 5 s", elapsed=5.0)
    assert "! no answer within 5 s (after 5.00 s)" in failed.describe()
    assert failed.to_dict()["response"] is None
