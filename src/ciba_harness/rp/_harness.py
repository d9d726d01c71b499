"""The client plan's session: the client test provider, the client under test and its driver.

`ClientSession.observe(name)` serves one behaviour, makes the client run its flow(s) and
returns what was recorded and concluded; `ClientTest` judges it with the client checks and
keeps going after a broken check, so one client defect shows as one requirement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ciba_harness.checks._registry import CheckRunner
from ciba_harness.core._errors import CheckFailure, CibaHarnessError, Severity
from ciba_harness.rp import _checks as c
from ciba_harness.rp._behaviours import BEHAVIOURS, Behaviour
from ciba_harness.rp._catalogue import default_severity
from ciba_harness.rp._config import ClientUnderTest
from ciba_harness.rp._driver import (
    ClientDriver,
    CommandClientDriver,
    FlowOutcome,
    FlowRequest,
    HttpClientDriver,
)
from ciba_harness.rp._provider import ClientRegistration, ClientTestProvider, Recording
from ciba_harness.rp.reference_client import ReferenceClient

__all__ = ["ClientSession", "ClientTest", "Observation", "start_client_session"]


@dataclass
class Observation:
    behaviour: Behaviour
    run: Recording
    flows: list[FlowRequest]
    outcomes: list[FlowOutcome]
    expected_subs: list[str]

    @property
    def outcome(self) -> FlowOutcome:
        return self.outcomes[0]

    @property
    def expected_sub(self) -> str:
        return self.expected_subs[0]


@dataclass
class ClientSession:
    config: ClientUnderTest
    provider: ClientTestProvider
    driver: ClientDriver
    reference: ReferenceClient | None = None
    strict: bool = False
    _counter: int = 0

    def supports(self, mode: str) -> bool:
        return mode in self.config.modes

    def observe(self, name: str) -> Observation:
        behaviour = BEHAVIOURS[name]
        run = self.provider.begin(behaviour)
        try:
            flows, outcomes, subs = [], [], []
            for index in range(behaviour.flows):
                self._counter += 1
                user = ("alice", "bob")[index % 2]
                flow = FlowRequest(user, f"Code {self._counter:04d}", behaviour.mode,
                                   self.provider.outcome_url(run))
                flows.append(flow)
                subs.append(f"sub-{user}")
                outcomes.append(self._run_flow(run, flow))
            self.provider.settle(run)
        finally:
            self.provider.end(run)
        return Observation(behaviour, run, flows, outcomes, subs)

    def _run_flow(self, run: Recording, flow: FlowRequest) -> FlowOutcome:
        timeout = self.config.flow_timeout
        already = len(run.outcomes)
        outcome = self.driver.start_flow(flow, timeout)
        if outcome is not None:
            return outcome
        deadline = time.monotonic() + timeout
        while len(run.outcomes) <= already and time.monotonic() < deadline:
            run.outcome_arrived.wait(0.05)
            run.outcome_arrived.clear()
        if len(run.outcomes) <= already:
            return FlowOutcome("none", reason=f"no outcome within {timeout:.0f} s")
        from ciba_harness.rp._driver import parse_outcome

        parsed = parse_outcome(run.outcomes[already])
        return parsed or FlowOutcome("none", reason="the outcome callback was not an outcome")

    def close(self) -> None:
        if self.reference is not None:
            self.reference.stop()
        self.provider.stop()

    def describe(self) -> dict[str, Any]:
        from ciba_harness import __version__

        return {
            "harness_version": __version__,
            "issuer": f"client under test ({self.config.driver} driver) at {self.provider.issuer}",
            "profile": "ciba (client)",
            "config_file": self.config.source,
            "embedded": self.reference is not None,
            "strict": self.strict,
            "device_driver": self.config.driver,
            "client_modes": list(self.config.modes),
            "faults": sorted(self.config.faults),
            "clients": [
                {"name": mode, "client_id": cid, "auth_method": self.config.auth_method,
                 "delivery_mode": mode}
                for mode, (cid, _secret) in self.config.registrations.items()
            ],
        }


def start_client_session(config: ClientUnderTest, *, strict: bool = False) -> ClientSession:
    """Start the provider (and, zero-config, the reference client) for `config`."""
    reference = None
    registrations = dict(config.registrations)
    if config.is_reference:
        # The client's callback URL is known only once it listens: start it after the
        # provider, whose issuer it needs, and register the endpoint then.
        provider = ClientTestProvider([], port=config.provider_port).start()
        try:
            reference = ReferenceClient(provider.issuer, registrations,
                                        faults=config.faults).start()
        except BaseException:
            provider.stop()
            raise
        endpoint: str | None = reference.notification_endpoint
        driver: ClientDriver = HttpClientDriver(reference.start_url)
    else:
        provider = ClientTestProvider([], port=config.provider_port).start()
        endpoint = config.notification_endpoint
        if config.driver == "http":
            assert config.start_url is not None
            driver = HttpClientDriver(config.start_url)
        elif config.driver == "command":
            assert config.command is not None
            driver = CommandClientDriver(config.command)
        else:
            raise CibaHarnessError(f"unknown client driver {config.driver!r}")
    for mode, (client_id, secret) in registrations.items():
        provider.clients[client_id] = ClientRegistration(
            client_id, secret, mode, config.auth_method,
            endpoint if mode in ("ping", "push") else None,
        )
    return ClientSession(config, provider, driver, reference, strict)


@dataclass
class ClientTest:
    """One test of the client plan: runs checks, records every outcome, fails at the end."""

    session: ClientSession
    runner: CheckRunner = field(default_factory=CheckRunner)
    failures: list[CheckFailure] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)

    def observe(self, name: str) -> Observation:
        import pytest

        behaviour = BEHAVIOURS[name]
        if not self.session.supports(behaviour.mode):
            pytest.skip(f"not applicable: the client under test does not support "
                        f"{behaviour.mode} mode ([client] modes)")
        observation = self.session.observe(name)
        self.observations.append(observation)
        return observation

    def check(self, function: Callable[..., None], *args: Any,
              severity: Severity | None = None, **kwargs: Any) -> bool:
        """Run one check at `severity` (default: the catalogue's rule for its requirement)."""
        from ciba_harness.checks._registry import CHECKS

        info = CHECKS.get(function.__name__)
        requirement = str(kwargs.get("requirement") or (info.requirement if info else ""))
        chosen = severity or default_severity(requirement)
        try:
            return self.runner(function, *args, severity=chosen, **kwargs)
        except CheckFailure as failure:
            self.failures.append(failure)
            return False

    def standard(self, observation: Observation) -> None:
        """The rules every flow must keep, whatever the behaviour."""
        run = observation.run
        for function in (c.rp_auth_request_is_form_post, c.rp_scope_has_openid,
                         c.rp_exactly_one_hint, c.rp_client_authenticated,
                         c.rp_token_request_well_formed, c.rp_no_overlapping_token_requests):
            self.check(function, run)
        self.check(c.rp_binding_message_sent, run, [f.binding_message for f in observation.flows])
        mode = observation.behaviour.mode
        if mode == "poll":
            for function in (c.rp_poll_interval_kept, c.rp_default_interval_kept,
                             c.rp_slow_down_honoured, c.rp_no_poll_after_expiry,
                             c.rp_no_poll_after_terminal_error):
                self.check(function, run)
        else:
            self.check(c.rp_notification_token_syntax, run)
            self.check(c.rp_notification_token_entropy, run)
            self.check(c.rp_notification_token_fresh,
                       [t.notification_token for t in run.transactions if t.notification_token])
            concluded = {txn.auth_req_id: outcome.concluded
                         for txn, outcome in zip(run.transactions, observation.outcomes,
                                                 strict=False)}
            self.check(c.rp_callback_answered_204, run, concluded)

    def tokens_accepted(self, behaviour: str) -> None:
        """Serve `behaviour`: the standard rules hold and every flow's tokens are accepted."""
        seen = self.observe(behaviour)
        self.standard(seen)
        for outcome, sub in zip(seen.outcomes, seen.expected_subs, strict=True):
            self.check(c.rp_tokens_accepted, outcome, sub)
        self.conclude()

    def tokens_refused(self, behaviour: str, *, what: str, requirement: str,
                       severity: Severity | None = None) -> None:
        """Serve `behaviour`: the standard rules hold and the client takes no tokens."""
        seen = self.observe(behaviour)
        self.standard(seen)
        self.check(c.rp_tokens_refused, seen.outcome, what=what, requirement=requirement,
                   severity=severity)
        self.conclude()

    def conclude(self) -> None:
        """Raise the first failure (the others are in the record and the report)."""
        if self.failures:
            first = self.failures[0]
            others = [f"[{f.requirement}] {f.title}" for f in self.failures[1:]]
            if others:
                first.args = (f"{first.args[0]}\n\nAlso broken in this test:\n  "
                              + "\n  ".join(others),)
            raise first
