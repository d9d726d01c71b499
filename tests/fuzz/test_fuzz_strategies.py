"""The strategies, without a provider: every case builds, the classification is right for
hand-made cases and agrees with what the core's builder puts on the wire, reprs hide secrets."""

from __future__ import annotations

import warnings
from collections import Counter
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings

from ciba_harness import (
    BackchannelParams,
    ClientAuthentication,
    ProviderMetadata,
    RequestObjectSpec,
    default_profile_path,
    load_config,
)
from ciba_harness.strategies import (
    BACKCHANNEL_REQUIREMENTS,
    BackchannelCase,
    TokenCase,
    backchannel_cases,
    classify,
    hostile_text,
    random_auth_req_ids,
    token_cases,
)

ISSUER = "https://op.example"
CONFIG = load_config(default_profile_path()).with_issuer(ISSUER)
METADATA = ProviderMetadata(
    issuer=ISSUER,
    token_endpoint=f"{ISSUER}/token",
    backchannel_authentication_endpoint=f"{ISSUER}/backchannel",
    delivery_modes=("poll", "ping", "push"),
    request_signing_algs=("RS256", "PS256", "ES256"),
    user_code_supported=True,
)
SECRETS = [c.client_secret for c in CONFIG.clients if c.client_secret]
OFFLINE = settings(
    max_examples=150, derandomize=True, database=None, deadline=None,
    suppress_health_check=list(HealthCheck),
)

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def case(client: str = "poll-basic", **changes: object) -> BackchannelCase:
    built = BackchannelCase(
        client=CONFIG.client(client),
        params=BackchannelParams(scope="openid", login_hint="alice"),
    )
    for name, value in changes.items():
        object.__setattr__(built, name, value)
    return built


def breaks(c: BackchannelCase) -> tuple[str, ...]:
    return classify(c, CONFIG, METADATA)


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (case(), ()),
        (case(params=BackchannelParams(scope="openid")), ("CIBA-AUTH-07",)),
        (case(params=BackchannelParams(scope="openid", login_hint="")), ("CIBA-AUTH-07",)),
        (case(params=BackchannelParams(scope=None, login_hint="alice")), ("CIBA-AUTH-03",)),
        (case(params=BackchannelParams(scope="", login_hint="alice")), ("CIBA-AUTH-03",)),
        (case(params=BackchannelParams(scope="profile", login_hint="alice")), ()),
        (
            case(params=BackchannelParams(login_hint="alice", id_token_hint="x", scope="openid")),
            ("CIBA-AUTH-08",),
        ),
        (
            case(params=BackchannelParams(login_hint="alice", extra=(("scope", "openid"),))),
            ("CIBA-AUTH-23",),
        ),
        # RFC 6749 §3.1: a parameter sent without a value is treated as omitted, so an empty
        # repeat is no repeat and an empty first value does not hide a later one (issue 12).
        (
            case(params=BackchannelParams(scope="openid", login_hint="alice",
                                          extra=(("scope", ""),))),
            (),
        ),
        (
            case(params=BackchannelParams(scope="", login_hint="alice",
                                          extra=(("scope", "openid"),))),
            (),
        ),
        (
            case(params=BackchannelParams(scope="openid", login_hint="alice",
                                          extra=(("login_hint", ""),))),
            (),
        ),
        (
            case(params=BackchannelParams(scope="openid", login_hint="alice",
                                          extra=(("scope", "profile"),))),
            ("CIBA-AUTH-23",),
        ),
        # Basic plus client_secret is two mechanisms (RFC 6749 §2.3); once the form's secret
        # is omitted, Basic plus client_id is one (client_id identifies, §3.2.1).
        (
            case("poll-post", auth=ClientAuthentication(method="client_secret_post",
                                                        also_basic=True),
                 auth_label="CIBA-CAUTH-13"),
            ("CIBA-CAUTH-13",),
        ),
        (
            case("poll-post", auth=ClientAuthentication(method="client_secret_post",
                                                        also_basic=True),
                 auth_label="CIBA-CAUTH-13", omit=("client_secret",)),
            (),
        ),
        (case(params=BackchannelParams(login_hint="no-such-user-7f3a")), ("CIBA-AUTH-09",)),
        (case(params=BackchannelParams(login_hint="carol")), ()),  # may be a real user
        (case(body_format="json"), ("CIBA-AUTH-02",)),
        (case(method="GET"), ("CIBA-AUTH-02",)),
        (case(auth=ClientAuthentication(method="omit"), auth_label="CIBA-CAUTH-01"), ("CIBA-CAUTH-01",)),
        (case("poll-rs256", omit=("client_id",)), ()),  # the assertion names the client
        (case("poll-rs256", omit=("client_assertion",)), ("CIBA-CAUTH-01",)),
        (case("poll-post", omit=("client_id", "client_secret")), ("CIBA-CAUTH-01",)),
        (case("ping-basic"), ("CIBA-AUTH-14",)),
        (case("poll-usercode"), ("CIBA-AUTH-25",)),
        (case("public"), ("CIBA-CAUTH-11",)),
        (case("no-ciba"), ("CIBA-AERR-08",)),
        (case("poll-signed"), ("CIBA-SREQ-16",)),
        (case("poll-signed", signed=RequestObjectSpec()), ()),
        (case("poll-rs256", signed=RequestObjectSpec(alg="none")), ("CIBA-SREQ-02",)),
        (case("poll-basic", signed=RequestObjectSpec(alg="HS256")), ("CIBA-SREQ-03",)),
        (case("poll-signed", signed=RequestObjectSpec(alg="PS256")), ("CIBA-SREQ-16",)),
        (case("poll-rs256", signed=RequestObjectSpec(tamper_signature=True)), ("CIBA-SREQ-04",)),
        (case("poll-rs256", signed=RequestObjectSpec(claims={"aud": None})), ("CIBA-SREQ-05",)),
        (case("poll-rs256", signed=RequestObjectSpec(claims={"aud": [ISSUER]})), ()),
        (case("poll-rs256", signed=RequestObjectSpec(lifetime=-600)), ("CIBA-SREQ-07",)),
        (case("poll-rs256", signed=RequestObjectSpec(nbf_offset=900)), ("CIBA-SREQ-09",)),
        (case("poll-rs256", signed=RequestObjectSpec(claims={"jti": None})), ("CIBA-SREQ-10",)),
        (
            case("poll-rs256", signed=RequestObjectSpec(claims={"requested_expiry": "30"})),
            (),
        ),
        (
            # Inside the request object the last value of a repeated parameter wins: no repeat.
            case(
                "poll-rs256",
                params=BackchannelParams(login_hint="alice", extra=(("login_hint", "bob"),)),
                signed=RequestObjectSpec(),
            ),
            (),
        ),
    ],
)
def test_classification_of_hand_made_cases(made: BackchannelCase, expected: tuple[str, ...]) -> None:
    assert breaks(made) == expected
    assert set(expected) <= set(BACKCHANNEL_REQUIREMENTS)


@OFFLINE
@given(backchannel_cases(CONFIG, METADATA))
def test_every_backchannel_case_builds_and_shows_no_secret(c: BackchannelCase) -> None:
    request = c.request
    assert request is not None and request.url.startswith(ISSUER)
    assert c.all_breaks == classify(c, CONFIG, METADATA)
    shown = repr(c)
    assert not any(secret in shown for secret in SECRETS)
    if c.method == "POST" and c.body_format == "form":
        # The strategy's view of repeated fields is what the builder sends.
        names = Counter(name for name, _ in parse_qsl(request.body.decode(), keep_blank_values=True))
        assert (max(names.values(), default=0) > 1) == ("CIBA-AUTH-23" in c.all_breaks)


@OFFLINE
@given(token_cases(CONFIG, METADATA))
def test_every_token_case_builds_and_is_a_refusal_case(c: TokenCase) -> None:
    request = c.build(METADATA)
    assert request.url == f"{ISSUER}/token"
    assert c.breaks in {"CIBA-TOKEN-02", "CIBA-TOKEN-03", "CIBA-TOKEN-19"}
    assert not any(secret in repr(c) for secret in SECRETS)


@OFFLINE
@given(hostile_text())
def test_hostile_text_is_always_sendable(value: str) -> None:
    value.encode("utf-8")  # no lone surrogates: every value can go on the wire


@OFFLINE
@given(random_auth_req_ids())
def test_guessed_auth_req_ids_are_well_formed(value: str) -> None:
    from ciba_harness import AUTH_REQ_ID_PATTERN

    assert AUTH_REQ_ID_PATTERN.match(value) and len(value) >= 22


@OFFLINE
@given(backchannel_cases(CONFIG, METADATA))
def test_query_string_cases_stay_sendable(c: BackchannelCase) -> None:
    if c.method == "POST":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        request = c.build(METADATA)
    assert len(request.url) <= 8000  # longer ones go as JSON: no client sends them
