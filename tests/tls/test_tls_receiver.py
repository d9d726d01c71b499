"""The harness's notification receiver and webhook device endpoint over HTTPS: a ping and a
push of the TLS reference provider reach it; the public URL may differ from the bind address
(here: the name `localhost` for a socket bound to 127.0.0.1, as a tunnel would)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_until

from ciba_harness import CibaClient, NotificationInbox, load_config
from ciba_harness.client._drivers import WebhookDriver
from ciba_harness.client._receiver import NotificationReceiver
from ciba_harness.core._config import ProviderConfig
from ciba_harness.core._errors import CibaHarnessError
from ciba_harness.core._http import HttpRequest
from ciba_harness.provider import RunningProvider, start_provider
from ciba_harness.provider.pki import resolve_pki_path

REPO = Path(__file__).resolve().parents[2]
TLS_PROFILE = REPO / "fixtures" / "profiles" / "reference-tls.toml"


def https_receiver(
    inbox: NotificationInbox, config: ProviderConfig, public: bool
) -> NotificationReceiver:
    """An https receiver on a free port, its public URL naming `localhost` when `public`.
    The port is chosen before binding (the public URL names it), so another process may take
    it in between: then try another one."""
    for _ in range(5):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        try:
            return NotificationReceiver(
                inbox,
                bind=f"127.0.0.1:{port}",
                public_url=f"https://localhost:{port}" if public else None,
                certificate=config.receiver.tls_certificate,
                key=config.receiver.tls_key,
            )
        except CibaHarnessError as error:
            if "cannot listen" not in str(error):
                raise
    raise AssertionError("no free port for the receiver in 5 tries")


@pytest.fixture(scope="module")
def provider() -> Iterator[RunningProvider]:
    with start_provider(TLS_PROFILE) as running:
        yield running


@pytest.fixture(scope="module")
def config(provider: RunningProvider) -> ProviderConfig:
    return load_config(TLS_PROFILE, test_pki=resolve_pki_path).with_issuer(provider.issuer)


def register(client: CibaClient, config: ProviderConfig, client_id: str, url: str) -> None:
    token = config.device.token or ""
    request = HttpRequest(
        "POST",
        f"{config.issuer}/admin/clients/{client_id}/notification-endpoint",
        (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")),
        f'{{"url": "{url}"}}'.encode(),
        frozenset({token}),
    )
    exchange = client.send(request)
    assert exchange.response is not None and exchange.response.status == 204, exchange.error


@pytest.mark.parametrize("public", [False, True], ids=["bind-address", "public-url"])
@pytest.mark.parametrize("name", ["ping-basic", "push-basic"])
def test_ping_and_push_reach_the_https_receiver(
    provider: RunningProvider, config: ProviderConfig, name: str, public: bool
) -> None:
    inbox = NotificationInbox()
    with https_receiver(inbox, config, public) as receiver:
        assert receiver.url.startswith("https://")
        client = CibaClient(config, inbox=inbox, notification_url=receiver.url)
        try:
            register(client, config, name, receiver.url)
            ciba_client = config.client(name)
            flow = client.start(ciba_client)
            client.approve(flow)
            notes = inbox.wait_for_flow(token=flow.notification_token,
                                        auth_req_id=flow.auth_req_id, timeout=30)
            assert notes, f"no {ciba_client.delivery_mode} arrived over https"
            note = notes[0]
            assert note.bearer == flow.notification_token and not note.violations
            if ciba_client.delivery_mode == "push":
                assert note.kind == "push_tokens" and note.payload
                client.check_id_token(flow, note.payload, push=True)
            else:
                assert note.kind == "ping"
                exchange = client.token(ciba_client, flow.auth_req_id)
                assert exchange.response is not None and exchange.response.status == 200
            # The provider records its delivery after the receiver answered: wait for it.
            delivered = wait_until(lambda: [
                d for d in list(provider.provider.deliveries) if d.auth_req_id == flow.auth_req_id
            ], timeout=10)
            assert delivered and delivered[0].url.startswith("https://")
            assert delivered[0].status in {200, 204}, delivered[0].error
        finally:
            client.close()


def test_webhook_device_endpoint_over_https(config: ProviderConfig) -> None:
    """The provider calls the harness's /device endpoint over https; the harness answers
    through the callback: the flow completes."""
    inbox = NotificationInbox()
    webhook = WebhookDriver(callback_url="set below", wait_timeout=10)
    with NotificationReceiver(inbox, certificate=config.receiver.tls_certificate,
                              key=config.receiver.tls_key, webhook=webhook) as receiver:
        assert receiver.device_hook_url.startswith("https://")
        with start_provider(TLS_PROFILE, device_webhook_url=receiver.device_hook_url) as op:
            webhook.callback_url = f"{op.issuer}/ext/ciba/auth/callback"
            local = config.with_issuer(op.issuer)
            client = CibaClient(local, inbox=inbox, driver=webhook)
            try:
                poll_client = local.client("poll-basic")
                flow = client.start(poll_client)
                client.approve(flow)
                client.poll(flow)
                assert client.expect_tokens(flow)["access_token"]
            finally:
                client.close()
