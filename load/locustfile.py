"""CIBA load scenarios for Locust.

    locust -f load/locustfile.py --ciba-config my-provider.toml          # web UI
    locust -f load/locustfile.py --headless -u 50 -r 10 -t 2m --ciba-mix flows
    ciba-harness load                                                    # embedded provider

One User class per scenario or persona; select them by class name, by tag (-T poll, -T storm,
-E profile) or with --ciba-mix. Without a selection all run, weighted as below (the mixed
profile). The behaviour lives in ciba_harness.load (typed, tested); docs/load.md describes
every scenario, option and metric.
"""

from __future__ import annotations

from locust import run_single_user, tag, task

from ciba_harness.load.users import (
    CibaFlowUser,
    CibaPollingUser,
    CibaStormUser,
    install,
)

install()


class BackchannelStorm(CibaStormUser):
    """Authentication requests only, round-robin over every client authentication method and
    signed request objects; --ciba-invalid-share of them deliberately invalid."""

    weight = 1

    @tag("storm", "backchannel")
    @task
    def backchannel(self) -> None:
        self.storm()


class TokenPolling(CibaPollingUser):
    """Many pending transactions polled at their interval (pending, slow_down, honoured
    intervals); each is approved after 5-15 s and replaced."""

    weight = 1

    @tag("polling", "token")
    @task
    def poll(self) -> None:
        self.poll_next()


class PollFlow(CibaFlowUser):
    """Whole poll-mode flows: backchannel, approval (or denial, expiry), polling to tokens."""

    weight = 3

    @tag("flow", "poll")
    @task
    def poll_flow(self) -> None:
        self.flow("poll")


class PingFlow(CibaFlowUser):
    """Whole ping-mode flows: the ping arrives at this process's receiver, then the token."""

    weight = 2

    @tag("flow", "ping")
    @task
    def ping_flow(self) -> None:
        self.flow("ping")


class PushFlow(CibaFlowUser):
    """Whole push-mode flows: the tokens (or the error) are pushed to the receiver."""

    weight = 2

    @tag("flow", "push")
    @task
    def push_flow(self) -> None:
        self.flow("push")


class CallCentre(CibaFlowUser):
    """Named profile 'callcentre' (identifier hint, binding message read to the caller,
    approval after 5-30 s, some deny)."""

    weight = 1
    profile_name = "callcentre"

    @tag("profile", "callcentre")
    @task
    def call(self) -> None:
        self.flow()


class PointOfSale(CibaFlowUser):
    """Named profile 'pos' (short expiry, fast approvals, push or ping)."""

    weight = 1
    profile_name = "pos"

    @tag("profile", "pos")
    @task
    def payment(self) -> None:
        self.flow()


class SmartTv(CibaFlowUser):
    """Named profile 'iot' (ping, long approvals, many expiries)."""

    weight = 1
    profile_name = "iot"

    @tag("profile", "iot")
    @task
    def sign_in(self) -> None:
        self.flow()


if __name__ == "__main__":
    run_single_user(PollFlow)
