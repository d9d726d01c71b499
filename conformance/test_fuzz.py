"""Generated requests (Hypothesis): properties that hold for any conformant provider.

Backchannel endpoint (CIBA §7.1, §13) and token endpoint (§10.1, §11):
* never a 5xx, never a hang (every request is answered within budgets.request_timeout);
* every error is JSON with an `error` code the spec registers for that endpoint, sent with
  the HTTP status the spec gives that code;
* no auth_req_id for a request that breaks a MUST, no tokens for a guessed auth_req_id and
  never `authorization_pending` for one;
* every issued auth_req_id uses the allowed characters, they carry enough entropy, and the
  provider still accepts a valid request after the run.

A failure is shrunk to a minimal request; its report names the requirement and ends with a
curl reproducer of that minimal request. Budgets: --ciba-fuzz-profile (docs/fuzzing.md).
"""

from __future__ import annotations

import pytest
from hypothesis import event, given, note

from ciba_harness import (
    ERROR_STATUS,
    CheckRunner,
    CibaClient,
    CibaFuzz,
    ProviderConfig,
    ProviderMetadata,
    auth_req_id_entropy,
    auth_req_ids_unique,
    require_client,
)
from ciba_harness.strategies import (
    BACKCHANNEL_REQUIREMENTS,
    TOKEN_REQUIREMENTS,
    BackchannelCase,
    TokenCase,
    backchannel_cases,
    judge_backchannel,
    judge_token,
    keep_last_exchanges,
    redacted,
    token_cases,
)

pytestmark = [
    pytest.mark.fuzz,
    # Generated request objects sign with short secrets on purpose.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

BACKCHANNEL_PROPERTIES = (
    "CIBA-AERR-01",
    *sorted({row for row, _ in ERROR_STATUS.values()}),
    "CIBA-ACK-01",
    "CIBA-ACK-03",
    "CIBA-ACK-04",
    "CIBA-ACK-05",
    "CIBA-ACK-06",
)
TOKEN_PROPERTIES = (
    "CIBA-TOKEN-20",
    "CIBA-TOKEN-21",
    "CIBA-SEC-05",
    # the check after the run: a valid request is acknowledged, its first poll pending
    "CIBA-ACK-01",
    "CIBA-ACK-03",
    "CIBA-TOKEN-05",
)
ENTROPY_SAMPLES = 8  # auth_req_id values judged together (topped up with valid requests)


# --- properties --------------------------------------------------------------------------------


@pytest.mark.requirement(*BACKCHANNEL_PROPERTIES, *BACKCHANNEL_REQUIREMENTS)
def test_backchannel_requests(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_fuzz: CibaFuzz,
) -> None:
    """Generated authentication requests: no 5xx, registered errors, no auth_req_id for a broken MUST."""
    poll_client = require_client(ciba_config, ciba_metadata, mode="poll")
    issued: list[str] = []
    budget = ciba_fuzz.budget()

    @ciba_fuzz.settings
    @given(case=backchannel_cases(ciba_config, ciba_metadata))
    def run(case: BackchannelCase) -> None:
        if budget.exhausted():
            return  # past the time budget: skip (not assume(): the clock is no input)
        event(f"breaks {case.breaks or 'nothing'}")
        # The request the strategy built (and classified) when it drew the case.
        request = case.request or case.build(ciba.metadata)
        exchange = ciba.send(request, label="fuzz backchannel", client=case.client)
        keep_last_exchanges(ciba)
        status = exchange.response.status if exchange.response else exchange.error
        event(f"status {status}")
        note(redacted(f"case breaks {case.breaks or 'no MUST'}; answered {status}", case))
        with budget.watch():
            auth_req_id = judge_backchannel(CheckRunner(), exchange, case)
        if auth_req_id is not None:
            issued.append(auth_req_id)

    budget.run(run)
    # The provider stays responsive: valid requests still succeed (CIBA-ACK-01), and the ids
    # issued during and after the run are distinct and unguessable (CIBA-ACK-06, CIBA-ACK-05).
    while len(issued) < ENTROPY_SAMPLES:
        flow = ciba.start(poll_client)
        issued.append(flow.auth_req_id)
    ciba.check(auth_req_ids_unique, issued)
    ciba.check(auth_req_id_entropy, sorted(set(issued)))


@pytest.mark.requirement(*TOKEN_PROPERTIES, *TOKEN_REQUIREMENTS)
def test_token_requests(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_fuzz: CibaFuzz,
) -> None:
    """Generated token requests with guessed auth_req_ids: refused, registered errors, never pending."""
    poll_client = require_client(ciba_config, ciba_metadata, mode="poll")
    budget = ciba_fuzz.budget()

    @ciba_fuzz.settings
    @given(case=token_cases(ciba_config, ciba_metadata))
    def run(case: TokenCase) -> None:
        if budget.exhausted():
            return  # past the time budget: skip (not assume(): the clock is no input)
        event(f"breaks {case.breaks}")
        exchange = ciba.send(case.build(ciba.metadata), label="fuzz token", client=case.client)
        keep_last_exchanges(ciba)
        status = exchange.response.status if exchange.response else exchange.error
        event(f"status {status}")
        note(redacted(f"case breaks {case.breaks}; answered {status}", case))
        with budget.watch():
            judge_token(CheckRunner(), exchange, case)

    budget.run(run)
    # Still responsive: a valid request is acknowledged and its first poll is pending.
    flow = ciba.start(poll_client)
    exchange = ciba.token(poll_client, flow.auth_req_id)
    ciba.expect_error(
        exchange, {"authorization_pending", "slow_down"}, requirement="CIBA-TOKEN-05"
    )
