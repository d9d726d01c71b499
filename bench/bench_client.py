"""Harness client overhead (issue 2): the same backchannel request sent by `CibaClient`
(build as data, authenticate, send over httpx, record, redact-ready) against a raw httpx loop
posting a prebuilt body to the same endpoint, sequentially, in the same run. Also the cost of
building requests without I/O, per client authentication method.
"""

from __future__ import annotations

import time
from dataclasses import replace

import httpx
from common import bench_server

from ciba_harness import (
    BackchannelParams,
    CibaClient,
    build_backchannel_request,
    default_profile_path,
    load_config,
)

REQUESTS = 400


def _per_second(count: int, action: object) -> float:
    started = time.perf_counter()
    for _ in range(count):
        action()  # type: ignore[operator]
    return count / (time.perf_counter() - started)


def main() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with bench_server() as (base, _):
        config = load_config(default_profile_path()).with_issuer(f"{base}/op")
        client = CibaClient(config)
        poll = config.client("poll-basic")
        params = BackchannelParams(login_hint="alice")
        request = build_backchannel_request(poll, client.metadata, params)
        raw = httpx.Client()

        def raw_post() -> None:
            response = raw.post(request.url, content=request.body, headers=list(request.headers))
            assert response.status_code == 200

        def harness_post() -> None:
            exchange = client.backchannel(poll, params)
            assert exchange.response is not None and exchange.response.status == 200
            client.recorder.reset()

        _per_second(50, raw_post)  # warm both connection pools
        _per_second(50, harness_post)
        raw_rate = _per_second(REQUESTS, raw_post)
        harness_rate = _per_second(REQUESTS, harness_post)
        raw_rate_again = _per_second(REQUESTS, raw_post)
        baseline = (raw_rate + raw_rate_again) / 2
        rows += [
            {"name": "raw httpx POST (prebuilt)", "value": baseline, "unit": "req/s",
             "note": f"sequential, mean of {raw_rate:.0f} and {raw_rate_again:.0f}"},
            {"name": "CibaClient.backchannel", "value": harness_rate, "unit": "req/s", "note": ""},
            {"name": "CibaClient / raw httpx", "value": harness_rate / baseline, "unit": "ratio",
             "note": "1.0 = no overhead"},
        ]
        for name in ("poll-basic", "poll-secret-jwt", "poll-rs256", "poll-ps256", "poll-es256"):
            chosen = config.client(name)
            signed_note = ""
            build_rate = _per_second(
                REQUESTS, lambda chosen=chosen: build_backchannel_request(chosen, client.metadata, params)
            )
            rows.append({"name": f"build request ({chosen.auth_method} {chosen.signing_alg or ''})".replace(" )", ")"),
                         "value": build_rate, "unit": "req/s", "note": signed_note or "no I/O"})
        signer = replace(config.client("poll-rs256"))
        from ciba_harness import RequestObjectSpec

        rows.append({
            "name": "build signed request object (RS256)",
            "value": _per_second(REQUESTS, lambda: build_backchannel_request(
                signer, client.metadata, params, signed=RequestObjectSpec())),
            "unit": "req/s", "note": "assertion + request object: two RSA signatures",
        })
        client.close()
        raw.close()
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
