"""The conformance suites. The ciba-harness pytest plugin (entry point) provides the fixtures:
`ciba` (the client of this test), `ciba_config`, `ciba_metadata`, `ciba_inbox`, `ciba_receiver`.
Run: pytest conformance [--ciba-config my-provider.toml], or wherever the harness is installed
pytest --pyargs ciba_harness_conformance. The fuzz plugin (ciba_harness.pytest_plugin._fuzz) comes
with the harness's plugin; pytest refuses `pytest_plugins` in a conftest below the root.
"""

from __future__ import annotations

import threading

import pytest

from ciba_harness.checks._backchannel import auth_req_ids_unique
from ciba_harness.core._requests import parse_acknowledgement

#: every auth_req_id a flow of this session was started with (tests run concurrently, so
#: a provider handing one id to two requests would otherwise let one test's deny or redeem
#: break another test under the wrong row)
_ISSUED: set[str] = set()
_ISSUED_LOCK = threading.Lock()


@pytest.fixture(autouse=True)
def _auth_req_ids_never_shared(request: pytest.FixtureRequest) -> None:
    """Each acknowledged auth_req_id is new to the session (CIBA §7.3: it identifies one
    authentication request, CIBA-ACK-06): checked on every backchannel answer of the test's
    client (flows started with ciba.start go through it too). No teardown: tests started
    early stay eligible."""
    if "ciba" not in request.fixturenames:
        return
    ciba = request.getfixturevalue("ciba")
    backchannel = ciba.backchannel

    def backchannel_checked(*args, **kwargs):
        exchange = backchannel(*args, **kwargs)
        ack = parse_acknowledgement(exchange.response) if exchange.response is not None else None
        if ack is not None:
            with _ISSUED_LOCK:
                repeated = ack.auth_req_id in _ISSUED
                _ISSUED.add(ack.auth_req_id)
            if repeated:
                ciba.check(auth_req_ids_unique, [ack.auth_req_id] * 2, exchanges=[exchange])
        return exchange

    ciba.backchannel = backchannel_checked
