"""The user's decision and what follows it: pings (CIBA §10.2), pushes (§10.3), the device
webhook, expiry of ping/push requests; every outbound call is recorded as a Delivery."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

import httpx

from ciba_harness.provider.forms import Form
from ciba_harness.provider.keys import Client
from ciba_harness.provider.protocol import NOTIFICATION_RETRY_DELAY
from ciba_harness.provider.state import Delivery, Part, ProviderState, Transaction
from ciba_harness.provider.tokens import TokenIssuer

log = logging.getLogger("ciba_harness.provider")


class Notifier(Part):
    """Decisions, expiry timers and the outbound calls they cause."""

    def __init__(self, state: ProviderState, tokens: TokenIssuer):
        super().__init__(state)
        self.tokens = tokens

    def decide(self, tx: Transaction, approve: bool) -> bool:
        """Apply the user's decision; False when the transaction is no longer pending."""
        f = self.faults
        self.state.check_expiry(tx)
        if tx.state != "pending":
            return False
        tx.state = "approved" if approve else "denied"
        if approve:
            tx.auth_time = time.time()
        self.state.retire(tx)
        if tx.mode == "ping":
            if approve or not f.ping_not_sent_on_denial:
                self.send_ping(tx, fallback=False)
        elif tx.mode == "push":
            if approve:
                self._push_tokens(tx)
            else:
                code = "expired_token" if f.push_denial_as_expired else "access_denied"
                self._push_error(tx, code)
        elif f.ping_on_poll_client:
            self.send_ping(tx, fallback=True)
        return True

    def expire(self, auth_req_id: str) -> None:
        tx = self.state.transactions.get(auth_req_id)
        if tx is None or tx.state != "pending":
            return
        tx.timer = None
        tx.state = "expired"
        self.state.retire(tx)
        if tx.mode == "ping":  # policy ping_on_expiry: the client then polls expired_token
            self.send_ping(tx, fallback=False)
            return
        if not self.policy.push_on_expiry and not self.faults.push_error_wrong_code:
            return
        code = "token_expired" if self.faults.push_error_wrong_code else "expired_token"
        self._push_error(tx, code)

    def endpoint_for(self, client_id: str, *, fallback: bool = False) -> str | None:
        state = self.state
        url = state.notification_endpoints.get(client_id) or state.default_notification_endpoint
        if url is None and fallback:
            url = next(iter(self.state.notification_endpoints.values()), None)
        return url

    def send_ping(self, tx: Transaction, *, fallback: bool) -> None:
        f = self.faults
        url = self.endpoint_for(tx.client_id, fallback=fallback)
        if url is None:
            log.warning("no notification endpoint for client %s: ping dropped", tx.client_id)
            return
        bearer = tx.notification_token
        if bearer is not None and f.ping_wrong_bearer:
            bearer = ("B" if bearer[0] == "A" else "A") + bearer[1:]
        if f.ping_without_bearer:
            bearer = None
        payload: dict[str, Any] = {"auth_req_id": tx.auth_req_id}
        if f.ping_extra_members:
            payload["status"] = tx.state
        times = 2 if f.ping_twice else 1
        self.state.spawn(self._post("ping", url, tx.auth_req_id, payload, bearer,
                              follow=f.ping_follows_redirect, times=times))

    def ping_for_rejected(self, client: Client, form: Form) -> None:
        token = form.get("client_notification_token")
        url = self.endpoint_for(client.client_id)
        if client.delivery_mode != "ping" or url is None:
            return
        fake = secrets.token_urlsafe(27)
        self.state.spawn(self._post("ping", url, fake, {"auth_req_id": fake}, token))

    def _push_tokens(self, tx: Transaction) -> None:
        f = self.faults
        try:
            payload = self.tokens.issue(tx, tx.client_id, push=True)
        except Exception:
            log.exception("building tokens for push failed")
            self._push_error(tx, "transaction_failed")
            return
        tx.state = "redeemed"
        if not f.push_missing_auth_req_id:
            payload = {"auth_req_id": tx.auth_req_id, **payload}
        self._push(tx, payload)

    def _push_error(self, tx: Transaction, code: str) -> None:
        self._push(tx, {"error": code, "auth_req_id": tx.auth_req_id})

    def _push(self, tx: Transaction, payload: dict[str, Any]) -> None:
        f = self.faults
        url = self.endpoint_for(tx.client_id)
        if url is None:
            log.warning("no notification endpoint for client %s: push dropped", tx.client_id)
            return
        bearer = None if f.push_without_bearer else tx.notification_token
        self.state.spawn(self._post("push", url, tx.auth_req_id, payload, bearer,
                              follow=f.push_follows_redirect,
                              times=2 if f.push_twice else 1))

    def call_webhook(self, tx: Transaction) -> None:
        assert self.state.webhook_url is not None
        token = secrets.token_urlsafe(32)
        tx.webhook_token = token
        self.state.webhook_tokens[token] = tx.auth_req_id
        payload = {
            "login_hint": tx.user_id,
            "scope": tx.scope,
            "binding_message": tx.binding_message,
            "acr_values": tx.acr_values,
            "is_consent_required": True,
            "auth_req_id": tx.auth_req_id,
        }
        self.state.spawn(
            self._post("webhook", self.state.webhook_url, tx.auth_req_id, payload, token)
        )

    async def _post(
        self, kind: str, url: str, auth_req_id: str, payload: dict[str, Any],
        bearer: str | None, *, follow: bool = False, times: int = 1,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        content = json.dumps(payload, separators=(",", ":")).encode()
        client = self.state.outbound.client()
        attempts, retry = 0, kind != "webhook" and self.policy.notification_retry
        while attempts < times:
            attempts += 1
            record = Delivery(kind, url, auth_req_id, payload, headers.get("Authorization"))
            try:
                resp = await client.post(
                    url, content=content, headers=headers, follow_redirects=follow,
                    timeout=self.settings.notification_timeout,
                )
                record.status = resp.status_code
                if resp.status_code >= 300:
                    log.info("%s to %s answered %s (not retried)", kind, url, resp.status_code)
            except httpx.HTTPError as exc:
                record.error = f"{type(exc).__name__}: {exc}"[:200]
                log.info("%s to %s failed: %s (not retried)", kind, url, record.error)
            except Exception as exc:  # never let a delivery crash the loop
                record.error = f"{type(exc).__name__}"
                log.exception("%s to %s crashed", kind, url)
            record.done = time.time()
            self.state.deliveries.append(record)
            failed = record.error is not None or (record.status or 0) >= 400
            if failed and retry and attempts == times:
                # policy notification_retry: one more attempt after a failure (not after 3xx)
                retry = False
                times += 1
                await asyncio.sleep(NOTIFICATION_RETRY_DELAY)
