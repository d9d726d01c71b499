"""The user's side: the device API (list, approve, deny, look up pending requests) and the
webhook callback of an authentication device."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ciba_harness.provider.errors import invalid_request
from ciba_harness.provider.forms import read_json_object
from ciba_harness.provider.notifications import Notifier
from ciba_harness.provider.protocol import MAX_DEVICE_DELAY, is_number
from ciba_harness.provider.responses import json_response
from ciba_harness.provider.state import Part, ProviderState, Transaction

log = logging.getLogger("ciba_harness.provider")


class DeviceApi(Part):
    """/device/* and /ext/ciba/auth/callback."""

    def __init__(self, state: ProviderState, notifier: Notifier):
        super().__init__(state)
        self.notifier = notifier

    def authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8", "surrogatepass"), self.settings.device_token.encode()
        )

    def describe(self, tx: Transaction) -> dict[str, Any]:
        return {
            "auth_req_id": tx.auth_req_id,
            "client_id": tx.client_id,
            "login_hint": tx.user_id,
            "scope": tx.scope,
            "binding_message": tx.binding_message,
            "acr_values": tx.acr_values,
            "created_at": tx.created_at,
            "expires_in": tx.expires_in,
            "delivery_mode": tx.mode,
        }

    def pending_requests(self) -> list[Transaction]:
        now = time.monotonic()
        for tx in list(self.state.pending.values()):
            self.state.check_expiry(tx, now)
        return list(self.state.pending.values())

    async def handle_decision(self, request: Request, auth_req_id: str, approve: bool) -> (
        Response
    ):
        body = await read_json_object(request, allow_empty=True)
        delay = body.get("delay", 0)
        if not is_number(delay) or not 0 <= delay <= MAX_DEVICE_DELAY:
            raise invalid_request(f"delay must be a number of seconds (0..{MAX_DEVICE_DELAY:.0f})")
        tx = self.state.transactions.get(auth_req_id)
        if tx is None:
            return json_response({"error": "not_found", "error_description": "no such request"},
                                 404)
        self.state.check_expiry(tx)
        if tx.state != "pending":
            return json_response(
                {"error": "conflict", "error_description": f"request is {tx.state}"}, 409
            )
        if delay > 0:
            self.state.spawn(self._decide_later(tx, approve, float(delay)))
            return json_response({"status": "scheduled", "delay": delay}, 202)
        self.notifier.decide(tx, approve)
        return json_response({"status": tx.state}, 200)

    async def _decide_later(self, tx: Transaction, approve: bool, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.notifier.decide(tx, approve):
            log.info("delayed decision for %s dropped: request is %s", tx.auth_req_id, tx.state)

    async def handle_lookup(self, request: Request) -> Response:
        body = await read_json_object(request)
        hint = body.get("login_hint")
        message = body.get("binding_message")
        matches = [
            self.describe(tx) for tx in self.pending_requests()
            if (hint is None or tx.user_id == hint)
            and (message is None or tx.binding_message == message)
        ]
        return json_response(matches)

    async def handle_webhook_callback(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        auth_req_id = (
            self.state.webhook_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        )
        if auth_req_id is None:
            return json_response(
                {"error": "invalid_token", "error_description": "unknown bearer token"}, 401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        body = await read_json_object(request)
        status = body.get("status")
        if status not in ("SUCCEED", "UNAUTHORIZED", "CANCELLED"):
            raise invalid_request("status must be SUCCEED, UNAUTHORIZED or CANCELLED")
        tx = self.state.transactions.get(auth_req_id)
        if tx is None or not self.notifier.decide(tx, status == "SUCCEED"):
            return json_response(
                {"error": "conflict", "error_description": "request is no longer pending"}, 409
            )
        return Response(status_code=204)
