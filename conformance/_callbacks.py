"""Waiting for ping and push callbacks (shared by the ping and push suites)."""

from __future__ import annotations

from ciba_harness.client._health import guarded_callback_wait
from ciba_harness.client._receiver import REDIRECT_TARGET_PATH


def notification_wait(ciba_config) -> float:
    """How long an expected callback may take to arrive."""
    return min(ciba_config.budgets.max_wait, 10.0)


def flow_callbacks(inbox, flow, *, timeout, count=1, expected=False):
    """The flow's callbacks at the notification endpoint (not at the redirect target).

    `expected`: the provider must call now; the wait goes through the session's notification
    breaker (fails at once while no notification ever arrives, see docs/robustness.md)."""

    def wait():
        return inbox.wait_for_flow(
            token=flow.notification_token,
            auth_req_id=flow.auth_req_id,
            timeout=timeout,
            count=count,
        )

    notes = guarded_callback_wait(inbox, wait, timeout=timeout) if expected else wait()
    return [n for n in notes if n.path != REDIRECT_TARGET_PATH]


def redirected_callbacks(inbox, flow, *, timeout):
    """Callbacks of this flow that reached the redirect target (a followed redirect): matched
    by the flow's bearer token or auth_req_id, so other tests' callbacks (tests run
    concurrently, _early.py) never count."""
    return inbox.wait_for_flow(
        token=flow.notification_token,
        auth_req_id=flow.auth_req_id,
        path=REDIRECT_TARGET_PATH,
        timeout=timeout,
    )
