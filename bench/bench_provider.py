"""Reference provider throughput, each as a ratio to the same server's trivial endpoint in the
same run (issue 3): backchannel requests, token requests, and complete poll flows.

Target: the backchannel endpoint at least half the trivial endpoint's rate, so the provider is
never the bottleneck of the project's own load demos.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from urllib.parse import urlencode, urlsplit

from common import bench_server, rate, run_threads

from ciba_harness import default_profile_path, load_config

SECONDS = 5.0


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _post(base: str, path: str, body: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("POST", path, body=body.encode(), headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else {}


def _flows_per_second(base: str, auth: str, device_token: str, seconds: float, threads: int = 8) -> float:
    """Complete poll flows (backchannel, device approval, token) from a plain-Python loop."""
    parts = urlsplit(base)
    done = [0] * threads
    stop = time.perf_counter() + seconds
    form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

        def call(path: str, body: bytes, headers: dict[str, str]) -> dict[str, object]:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return json.loads(response.read() or b"{}")

        while time.perf_counter() < stop:
            ack = call("/op/backchannel", urlencode({"scope": "openid", "login_hint": "alice"}).encode(), form)
            rid = str(ack["auth_req_id"])
            call(f"/op/device/requests/{rid}/approve", b"{}",
                 {"Authorization": f"Bearer {device_token}", "Content-Type": "application/json"})
            body = urlencode({"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": rid})
            for _ in range(50):  # the approval is applied asynchronously; first poll is allowed
                tokens = call("/op/token", body.encode(), form)
                if "access_token" in tokens:
                    done[index] += 1
                    break
                time.sleep(0.01)
        connection.close()

    return sum(done) / run_threads(worker, threads)


def main() -> list[dict[str, object]]:
    config = load_config(default_profile_path())
    client = config.client("poll-basic")
    auth = _basic(client.client_id, client.client_secret or "")
    form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}
    rows: list[dict[str, object]] = []
    with bench_server() as (base, _):
        backchannel_body = urlencode({"scope": "openid", "login_hint": "alice"})
        status, ack = _post(base, "/op/backchannel", backchannel_body, form)
        assert status == 200, (status, ack)
        token_body = urlencode({"grant_type": "urn:openid:params:grant-type:ciba",
                                "auth_req_id": str(ack["auth_req_id"])})
        trivial = rate(base + "/trivial", seconds=SECONDS)
        backchannel = rate(base + "/op/backchannel", method="POST", body=backchannel_body,
                           headers=form, seconds=SECONDS)
        token = rate(base + "/op/token", method="POST", body=token_body, headers=form, seconds=SECONDS)
        trivial_again = rate(base + "/trivial", seconds=SECONDS)
        flows = _flows_per_second(base, auth, config.device.token or "", SECONDS)
    baseline = (trivial + trivial_again) / 2
    rows += [
        {"name": "trivial endpoint", "value": baseline, "unit": "req/s",
         "note": f"mean of two runs ({trivial:.0f}, {trivial_again:.0f}); server pinned to core 0"},
        {"name": "backchannel (client_secret_basic)", "value": backchannel, "unit": "req/s", "note": ""},
        {"name": "backchannel / trivial", "value": backchannel / baseline, "unit": "ratio",
         "note": "target >= 0.5"},
        {"name": "token (pending id, slow_down path)", "value": token, "unit": "req/s", "note": ""},
        {"name": "token / trivial", "value": token / baseline, "unit": "ratio", "note": ""},
        {"name": "complete poll flows", "value": flows, "unit": "flow/s",
         "note": "backchannel + approve + token; plain-Python client, 8 threads"},
    ]
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
