"""login_hint_token minting (CIBA §7.1 leaves its format to the deployment): the harness's
client-signed tokens are the ones a provider with policy login_hint_token_client_signed
accepts (valid), refuses as expired (expired) or as naming no user (unknown)."""

from __future__ import annotations

import dataclasses

import pytest

from ciba_harness import decode_unverified, default_profile_path, load_config
from ciba_harness.core._requests import login_hint_token
from ciba_harness.provider import start_provider
from ciba_harness.provider.errors import OAuthError

CONFIG = load_config(default_profile_path())


@dataclasses.dataclass(frozen=True)
class _Users:
    """[users] with login_hint_token_format = "client_signed" (the key the config learns)."""

    login_hint: str
    unknown_login_hint: str
    login_hint_token_format: str = "client_signed"
    login_hint_token_hs256_key: str | None = None


USERS = _Users(CONFIG.users.login_hint, CONFIG.users.unknown_login_hint)


@pytest.mark.parametrize("client_name", ["poll-basic", "poll-rs256"])
def test_client_signed_tokens_are_what_the_provider_expects(client_name: str) -> None:
    client = CONFIG.client(client_name)
    with start_provider(default_profile_path(),
                        policies=["login_hint_token_client_signed"]) as running:
        provider = running.provider
        registered = provider.clients[client.client_id]
        valid = login_hint_token(USERS, "valid", client=client)  # type: ignore[arg-type]
        assert valid is not None
        assert provider.users.from_client_signed_hint(valid, registered) == USERS.login_hint
        for kind, error in (("expired", "expired_login_hint_token"),
                            ("unknown", "unknown_user_id")):
            token = login_hint_token(USERS, kind, client=client)  # type: ignore[arg-type]
            assert token is not None
            with pytest.raises(OAuthError) as raised:
                provider.users.from_client_signed_hint(token, registered)
            assert raised.value.error == error, kind


def test_client_signed_needs_the_requesting_client() -> None:
    assert login_hint_token(USERS, "valid") is None  # type: ignore[arg-type]


def test_the_default_format_is_unchanged() -> None:
    """Without the key: the provider's HS256 format ({"sub"}), whatever the client."""
    if not CONFIG.users.login_hint_token_hs256_key:
        pytest.skip("the reference profile has no login_hint_token_hs256_key")
    token = login_hint_token(CONFIG.users, "valid", client=CONFIG.client("poll-basic"))
    assert token is not None
    claims = decode_unverified(token)[1]
    assert claims["sub"] == CONFIG.users.login_hint and "sub_id" not in claims
