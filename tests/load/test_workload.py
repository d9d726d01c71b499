"""The workload that looks like users: flows over every client authentication method, the
refresh-token use after a login, and the webhook device driver serving the load flows."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

from ciba_harness.client._drivers import DeviceContext, WebhookDriver
from ciba_harness.core._config import default_profile_path, load_config
from ciba_harness.load import PROFILES
from ciba_harness.load._context import _flow_clients

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 90


def test_flows_take_turns_over_the_client_authentication_methods() -> None:
    config = load_config(default_profile_path())
    poll = config.find_client(mode="poll")
    assert poll is not None
    every = _flow_clients(config, {"poll": poll}, every=True)["poll"]
    methods = {client.auth_method for client in every}
    assert every[0] is poll
    assert {"client_secret_basic", "client_secret_post", "client_secret_jwt",
            "private_key_jwt"} <= methods
    assert any(client.sign_requests for client in every)
    assert all(client.ciba_allowed and client.auth_method != "none" for client in every)
    assert _flow_clients(config, {"poll": poll}, every=False)["poll"] == [poll]


def test_smart_tv_persona_refreshes_after_login() -> None:
    tv = PROFILES["iot"]
    assert tv.refresh_share > 0 and tv.approval_delay.kind == "lognormal"
    assert tv.expire_share > 0  # users who never answer: the request expires
    assert tv.scaled(0.1).refresh_after.mean == tv.refresh_after.mean * 0.1


def test_webhook_driver_finds_its_own_call_and_forgets_the_oldest() -> None:
    driver = WebhookDriver(callback_url="http://127.0.0.1:9/cb", wait_timeout=0.1, max_calls=3)
    driver.record("bearer-1", {"auth_req_id": "a", "binding_message": "Code 1"})
    driver.record("bearer-2", {"auth_req_id": "b", "binding_message": "Code 2"})
    driver.record("bearer-3", {"auth_req_id": "c", "binding_message": "Code 1"})
    request = driver.decision_request("approve", DeviceContext("a", binding_message="Code 1"))
    # the call naming "a" wins over another flow's later call with the same message
    assert ("Authorization", "Bearer bearer-1") in request.headers
    by_message = driver.decision_request("approve", DeviceContext("zz", binding_message="Code 1"))
    assert ("Authorization", "Bearer bearer-3") in by_message.headers  # the latest by message
    driver.record("bearer-4", {"auth_req_id": "d"})  # "a" is forgotten now
    assert driver._find(DeviceContext("a")) is None
    assert driver._find(DeviceContext("d")) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_webhook_driver_serves_poll_flows_with_refresh_and_every_client(tmp_path: Path) -> None:
    """The reference provider calls the load process's /device endpoint for every request;
    the user's decision (after a log-normal delay) goes back through its callback. Every
    approved flow's session then refreshes its tokens once."""
    port = _free_port()
    keys = (REPO / "fixtures" / "keys").as_posix()
    profile = default_profile_path().read_text(encoding="utf-8").replace('"../keys/', f'"{keys}/')
    profile = profile.replace('driver = "embedded"', 'driver = "webhook"', 1)
    profile = profile.replace('bind = "127.0.0.1:0"', f'bind = "127.0.0.1:{port}"', 1)
    profile = profile.replace(
        "[reference_provider]\n",
        f'[reference_provider]\ndevice_webhook_url = "http://127.0.0.1:{port}/device"\n', 1,
    )
    assert 'driver = "webhook"' in profile and f"127.0.0.1:{port}/device" in profile
    path = tmp_path / "webhook.toml"
    path.write_text(profile, encoding="utf-8")
    env = os.environ.copy()
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    result = subprocess.run(
        [sys.executable, "-m", "ciba_harness.load", "--ciba-config", str(path),
         "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "run.html"), "--only-summary",
         "--ciba-mix", "poll", "-u", "6", "-r", "6", "-t", "8s",
         "--ciba-approval-delay", "lognormal:0.3,0.3", "--ciba-deny-share", "0.2",
         "--ciba-expire-share", "0", "--ciba-refresh-share", "1", "--ciba-refresh-after",
         "fixed:0.2", "--ciba-max-fail-ratio", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT, env=env,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    with open(tmp_path / "run_stats.csv", newline="") as handle:
        stats = {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}
    assert int(stats[("CIBA", "time_to_tokens poll")]["Request Count"]) > 0
    assert int(stats[("CIBA", "denied poll")]["Request Count"]) > 0
    assert int(stats[("POST", "device approve")]["Request Count"]) > 0  # the webhook callback
    assert int(stats[("POST", "token refresh")]["Request Count"]) > 0
    assert all(row["Failure Count"] == "0" for row in stats.values())
