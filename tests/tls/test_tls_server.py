"""The reference provider over real TLS sockets: HTTPS issuer, mTLS port, TLS versions and
suites, client certificates at the handshake, the CLI flags."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ciba_harness.client._tls import client_ssl_context, probe_tls
from ciba_harness.provider import RunningProvider, start_provider
from ciba_harness.provider.pki import ensure_test_pki

REPO = Path(__file__).resolve().parents[2]
TLS_PROFILE = REPO / "fixtures" / "profiles" / "reference-tls.toml"
PLAIN_PROFILE = REPO / "fixtures" / "profiles" / "reference.toml"
PKI = ensure_test_pki()
CA = str(PKI.ca)


def with_cert(name: str | None) -> ssl.SSLContext:
    return client_ssl_context(CA, (str(PKI.cert(name)), str(PKI.key(name))) if name else None)


@pytest.fixture(scope="module")
def tls_provider() -> Iterator[RunningProvider]:
    with start_provider(TLS_PROFILE) as provider:
        yield provider


def test_https_issuer_and_mtls_aliases(tls_provider: RunningProvider) -> None:
    assert tls_provider.issuer.startswith("https://127.0.0.1:")
    assert tls_provider.mtls_port and tls_provider.mtls_port != tls_provider.port
    with httpx.Client(verify=with_cert(None)) as http:
        doc = http.get(f"{tls_provider.issuer}/.well-known/openid-configuration").json()
    assert doc["issuer"] == tls_provider.issuer
    assert doc["tls_client_certificate_bound_access_tokens"] is True
    aliases = doc["mtls_endpoint_aliases"]
    assert aliases["token_endpoint"] == f"{tls_provider.mtls_base}/token"
    assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(
        doc["token_endpoint_auth_methods_supported"])


@pytest.mark.parametrize("port_kind", ["main", "mtls"])
def test_tls_versions(tls_provider: RunningProvider, port_kind: str) -> None:
    port = tls_provider.port if port_kind == "main" else tls_provider.mtls_port
    url = f"https://127.0.0.1:{port}/"
    assert probe_tls(url, versions=("1.2", "1.2"), verify=CA).established
    assert probe_tls(url, versions=("1.3", "1.3"), verify=CA).established
    for legacy in ("1.0", "1.1"):
        probe = probe_tls(url, versions=(legacy, legacy), verify=False)
        assert not probe.established and not probe.inconclusive, probe


def test_only_fapi_suites_below_tls13(tls_provider: RunningProvider) -> None:
    url = f"{tls_provider.issuer}/"
    assert probe_tls(url, versions=("1.2", "1.2"), ciphers="ECDHE-RSA-AES128-GCM-SHA256",
                     verify=CA).established
    for weak in ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA"):
        assert not probe_tls(url, versions=("1.2", "1.2"), ciphers=weak, verify=False).established


def test_weak_cipher_fault_enables_weak_suites() -> None:
    with start_provider(TLS_PROFILE, faults={"tls_weak_cipher_accepted"}) as provider:
        url = f"{provider.issuer}/"
        assert probe_tls(url, versions=("1.2", "1.2"), ciphers="AES128-GCM-SHA256",
                         verify=CA).established
        probe = probe_tls(url, versions=("1.1", "1.1"), verify=False)
        assert not probe.established, "the fault must not enable TLS 1.1 (FAPI-CIBA-16)"


def test_minimum_tls_13_option() -> None:
    with start_provider(TLS_PROFILE, tls_minimum_version="1.3") as provider:
        url = f"{provider.issuer}/"
        assert not probe_tls(url, versions=("1.2", "1.2"), verify=CA).established
        assert probe_tls(url, versions=("1.3", "1.3"), verify=CA).established


@pytest.mark.parametrize(
    ("name", "handshake"),
    [("client-a", True), ("self-a", True), ("self-b", False), ("rogue-client-a", False)],
)
def test_client_certificates_at_the_mtls_handshake(
    tls_provider: RunningProvider, name: str, handshake: bool
) -> None:
    """Trusted at the TLS layer: CA-issued ones and registered self-signed ones."""
    url = f"{tls_provider.mtls_base}/jwks"
    try:
        with httpx.Client(verify=with_cert(name)) as http:
            status = http.get(url).status_code
    except (httpx.HTTPError, ssl.SSLError):
        status = None
    assert (status == 200) is handshake


def test_mtls_client_authentication_over_the_network(tls_provider: RunningProvider) -> None:
    form = {"client_id": "poll-mtls", "scope": "openid", "login_hint": "alice"}
    with httpx.Client(verify=with_cert("client-a")) as http:
        ok = http.post(f"{tls_provider.mtls_base}/backchannel", data=form)
        at_main_port = http.post(f"{tls_provider.issuer}/backchannel", data=form)
    with httpx.Client(verify=with_cert("client-b")) as http:
        other_cert = http.post(f"{tls_provider.mtls_base}/backchannel", data=form)
    assert ok.status_code == 200, ok.text
    assert at_main_port.status_code == 401  # no certificate is requested on the issuer's port
    assert other_cert.json()["error"] == "invalid_client"


def test_tls_flag_uses_the_generated_pki_for_a_plain_profile() -> None:
    with start_provider(PLAIN_PROFILE, tls=True) as provider:
        assert provider.issuer.startswith("https://")
        with httpx.Client(verify=with_cert(None)) as http:
            assert http.get(f"{provider.issuer}/jwks").status_code == 200


def test_cli_tls_and_profile_flags() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ciba_harness.provider", "--port", "0", "--tls",
         "--profile", "fapi-ciba"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        second = process.stdout.readline().strip()
        issuer = first.rsplit(" ", 1)[-1]
        assert issuer.startswith("https://127.0.0.1:"), first
        assert "mTLS endpoints" in second and "fapi-ciba" in second
        with httpx.Client(verify=with_cert(None)) as http:
            doc = http.get(f"{issuer}/.well-known/openid-configuration").json()
        assert doc["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
        assert doc["id_token_signing_alg_values_supported"] == ["PS256"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
