"""Profile parsing (load_profile) and create_app argument checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from provider_helpers import PROFILE, REPO

from ciba_harness.provider import ProfileError, ProviderSettings, create_app, load_profile
from ciba_harness.provider.faults import FaultError


def test_reference_profile(settings: ProviderSettings) -> None:
    assert set(settings.users) == {"alice", "bob", "mallory"}
    assert settings.users["alice"].user_code == "4711"
    assert settings.blocked_users == frozenset({"mallory"})
    assert settings.interval == 1 and settings.slow_down_increment == 5
    assert settings.binding_message_max == 20 and settings.notification_timeout == 3.0
    assert settings.device_token == "device-api-test-token"
    c = settings.clients
    assert c["poll-signed"].sign_requests and c["poll-signed"].request_signing_alg == "RS256"
    assert c["poll-rs256"].public_key_pem and not c["poll-rs256"].sign_requests
    assert c["no-ciba"].ciba_allowed is False and c["poll-usercode"].user_code_required
    assert c["public-client"].auth_method == "none"
    assert c["poll-second"].roles == ("second",)
    assert settings.source == PROFILE.resolve()


def test_relative_paths_resolve_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    shutil.copytree(REPO / "fixtures" / "keys", tmp_path / "keys")
    copy = tmp_path / "profiles" / "p.toml"
    copy.write_text(PROFILE.read_text())
    assert load_profile(copy).clients["poll-es256"].public_key_pem is not None


BASE = """
[device]
token = "t"
[users]
login_hint = "alice"
[reference_provider]
signing_key = "{key}"
"""


def _profile(tmp_path: Path, extra: str = "", key: str | None = None) -> Path:
    key = key or str(REPO / "fixtures" / "keys" / "provider-signing-rsa.pem")
    p = tmp_path / "p.toml"
    p.write_text(BASE.format(key=key) + extra)
    return p


def test_minimal_profile(tmp_path: Path) -> None:
    s = load_profile(_profile(tmp_path))
    assert s.interval == 5 and s.default_expires_in == 120 and s.clients == {}
    app = create_app(s, issuer="http://127.0.0.1:1/")
    assert app.state.provider.issuer == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("interval = 0\n", "interval must be a positive integer"),
        ("interval = true\n", "must not be a boolean"),
        ("interval = 'x'\n", "wrong type"),
        ("id_token_alg = 'HS256'\n", "id_token_alg"),
        ("blocked_users = [1]\n", "blocked_users"),
        ("notification_timeout = -1\n", "must not be negative"),
        ("notification_ca_file = 'nope.pem'\n", "does not exist"),
        ("notification_verify_tls = 1\n", "wrong type"),
        ("\n[[clients]]\nauth_method = 'client_secret_basic'\n", "client_id is missing"),
        ("\n[[clients]]\nclient_id = 'a'\nauth_method = 'magic'\n", "unknown auth_method"),
        ("\n[[clients]]\nclient_id = 'a'\ndelivery_mode = 'email'\nclient_secret = 's'\n",
         "unknown delivery_mode"),
        ("\n[[clients]]\nclient_id = 'a'\nauth_method = 'client_secret_post'\n",
         "needs client_secret"),
        ("\n[[clients]]\nclient_id = 'a'\nauth_method = 'private_key_jwt'\n",
         "needs private_key"),
        ("\n[[clients]]\nclient_id = 'a'\nauth_method = 'private_key_jwt'\n"
         "private_key = '/nonexistent.pem'\n", "cannot read key file"),
        ("\n[[clients]]\nclient_id = 'a'\nclient_secret = 's'\n"
         "[[clients]]\nclient_id = 'a'\nclient_secret = 's'\n", "duplicate client_id"),
    ],
)
def test_profile_errors(tmp_path: Path, extra: str, needle: str) -> None:
    text = _profile(tmp_path).read_text()
    if extra.startswith("\n[[clients]]"):
        text += extra
    else:
        text = text.replace("[reference_provider]\n", "[reference_provider]\n" + extra)
    p = tmp_path / "q.toml"
    p.write_text(text)
    with pytest.raises(ProfileError, match=needle):
        load_profile(p)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[[")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="signing key"):
        load_profile(_profile(tmp_path, key=str(bad)))
    no_device = tmp_path / "nd.toml"
    no_device.write_text(_profile(tmp_path).read_text().replace('token = "t"', ""))
    with pytest.raises(ProfileError, match="token is missing"):
        load_profile(no_device)


def test_notification_tls_options(tmp_path: Path) -> None:
    ca = REPO / "fixtures" / "keys" / "provider-signing-rsa.pem"  # any existing file
    text = _profile(tmp_path).read_text().replace(
        "[reference_provider]\n",
        f"[reference_provider]\nnotification_verify_tls = false\nnotification_ca_file = '{ca}'\n")
    p = tmp_path / "tls.toml"
    p.write_text(text)
    s = load_profile(p)
    assert s.notification_verify_tls is False and s.notification_ca_file == ca
    create_app(s, issuer="http://x")


def test_create_app_refuses_unknown_faults(settings: ProviderSettings) -> None:
    with pytest.raises(ValueError, match="unknown fault: nope"):
        create_app(settings, issuer="http://x", faults=frozenset({"nope"}))


def test_create_app_suggests_the_fault_meant(settings: ProviderSettings) -> None:
    """A misspelt fault is an error at start-up, naming the fault it resembles."""
    with pytest.raises(FaultError, match=(
        r"^unknown fault: id_token_wrong_aub \(did you mean 'id_token_wrong_aud'\?\)$"
    )):
        create_app(settings, issuer="http://x", faults=["id_token_wrong_aub"])
