"""Responses: JSON bodies, the no-store headers, the error responses of the endpoints (with the
faults that change them at the backchannel and token endpoints)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.responses import Response

from ciba_harness.provider.errors import OAuthError
from ciba_harness.provider.faults import Faults
from ciba_harness.provider.state import NO_STORE, Part

#: backchannel error code -> (the fault that changes its status, the wrong status)
STATUS_FAULTS: Mapping[str, tuple[Callable[[Faults], bool], int]] = {
    "invalid_request": (lambda f: f.invalid_request_wrong_status, 422),
    "expired_login_hint_token": (lambda f: f.expired_login_hint_token_wrong_status, 401),
    "unknown_user_id": (lambda f: f.unknown_user_wrong_status, 404),
    "unauthorized_client": (lambda f: f.unauthorized_client_wrong_status, 401),
    "missing_user_code": (lambda f: f.missing_user_code_wrong_status, 401),
    "invalid_user_code": (lambda f: f.invalid_user_code_wrong_status, 401),
    "invalid_binding_message": (lambda f: f.binding_message_error_wrong_status, 401),
    "invalid_client": (lambda f: f.invalid_client_status_403, 403),
    "access_denied": (lambda f: f.access_denied_wrong_status, 400),
}


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")).encode(), status, dict(headers or {}), media_type
    )


def invalid_token(description: str) -> Response:
    return json_response(
        {"error": "invalid_token", "error_description": description}, 401,
        {"WWW-Authenticate": 'Bearer error="invalid_token"', **NO_STORE},
    )


class ErrorResponses(Part):
    """OAuth error responses of one provider instance (its policy and faults)."""

    def response(self, err: OAuthError, endpoint: str) -> Response:
        f = self.faults
        status = err.status
        headers = dict(self.no_store)
        body = self.body(err)
        www = err.error == "invalid_client" and err.basic
        if err.error == "invalid_client" and not err.basic:
            status = self.policy.invalid_client_status_without_basic
        not_json = False
        if endpoint == "backchannel":
            override = STATUS_FAULTS.get(err.error)
            if override is not None and override[0](f) and status != 413:
                status = override[1]
            if www and f.basic_401_without_www_authenticate:
                www = False
            if f.error_extra_chars:  # the fault wins over the policy no_error_description
                body["error_description"] = f'{err.description} ("{err.error}")\nsee log'
            if f.error_uri_bad_chars:
                body["error_uri"] = f'https://errors.invalid/ciba "{err.error}"'
            not_json = f.error_not_json
        elif endpoint == "token":
            if www and f.token_invalid_client_no_www_authenticate:
                www = False
            not_json = f.token_error_not_json
        if www:
            headers["WWW-Authenticate"] = 'Basic realm="ciba"'
        if not_json:
            text = f"error={body['error']}"
            if "error_description" in body:
                text += f"&error_description={body['error_description']}"
            return Response(text, status, headers, "text/plain")
        return json_response(body, status, headers)

    def body(self, err: OAuthError) -> dict[str, str]:
        """``{"error", "error_description"}`` (only ``error`` under no_error_description; plus
        ``error_uri`` under error_uri)."""
        body = {"error": err.error}
        if self.policy.error_description:
            body["error_description"] = err.description
        if self.policy.error_uri:
            body["error_uri"] = f"https://errors.example/ciba#{err.error}"
        return body
