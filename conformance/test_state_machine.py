"""A stateful model of the CIBA transaction (Hypothesis RuleBasedStateMachine), poll mode.

The machine and its model are `ciba_harness.strategies._state_machine` (the rules, what the
model predicts, the invariants, how time is spent); this module binds it to the session: its
client, the clients it drives, the profile's budgets and settings.
"""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from ciba_harness import (
    CibaClient,
    CibaFuzz,
    ClientConfig,
    ProviderConfig,
    ProviderMetadata,
    require_client,
)
from ciba_harness.strategies import make_machine

pytestmark = pytest.mark.fuzz


def machine_clients(config: ProviderConfig, metadata: ProviderMetadata) -> tuple[ClientConfig, ...]:
    """The poll client, a second poll client (cross-client steps) and a ping client if any."""
    owner = require_client(config, metadata, mode="poll")
    second = config.find_client(mode="poll", role="second", exclude=(owner.name,))
    second = second or config.find_client(mode="poll", exclude=(owner.name,))
    if second is None:
        pytest.skip("not covered: a second poll client is needed for cross-client steps")
    ping = config.find_client(mode="ping") if metadata.supports_mode("ping") else None
    return (owner, second, *((ping,) if ping is not None else ()))


@pytest.mark.slow  # wait-bound: started early (ciba_harness/pytest_plugin/_early.py)
@pytest.mark.requirement(
    "CIBA-ACK-01",
    "CIBA-ACK-03",
    "CIBA-ACK-06",
    "CIBA-ACK-07",
    "CIBA-ACK-08",
    "CIBA-TOKEN-04",
    "CIBA-TOKEN-05",
    "CIBA-TOKEN-06",
    "CIBA-TOKEN-12",
    "CIBA-TOKEN-13",
    "CIBA-TOKEN-14",
    "CIBA-TOKEN-16",
    "CIBA-TOKEN-21",
    "CIBA-TOKEN-23",
    "CIBA-TOKEN-24",
)
def test_transaction_state_machine(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_fuzz: CibaFuzz,
) -> None:
    """Random sequences of CIBA steps across clients: every answer is the one the model predicts."""
    if ciba_config.device.driver == "manual":
        pytest.skip("not covered: the state machine needs an automatic device driver")
    budget = ciba_fuzz.machine_budget()
    machine = make_machine(
        ciba,
        machine_clients(ciba_config, ciba_metadata),
        requested_expiry=ciba_config.budgets.requested_expiry,
        budget=budget,
        # A patient program sleeps at most this long: one expiry and an interval or two.
        max_wait=min(ciba_config.budgets.max_wait, ciba_config.budgets.requested_expiry + 2.0),
    )
    budget.run(lambda: run_state_machine_as_test(machine, settings=ciba_fuzz.machine_settings))
