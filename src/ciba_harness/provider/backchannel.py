"""The backchannel authentication endpoint (CIBA §7): the request, plain or signed (§7.1.1),
its validation, the new transaction and its acknowledgement (§7.3)."""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ciba_harness.provider import jose
from ciba_harness.provider.clientauth import ClientAuthenticator
from ciba_harness.provider.errors import OAuthError, invalid_request
from ciba_harness.provider.forms import Form, read_form
from ciba_harness.provider.hints import UserResolver
from ciba_harness.provider.keys import Client
from ciba_harness.provider.notifications import Notifier
from ciba_harness.provider.policies import EXTRA_ACK_MEMBERS
from ciba_harness.provider.protocol import (
    AUTH_PARAMS,
    FAPI_ALGS,
    FAPI_REQUEST_LIFETIME,
    KNOWN_BACKCHANNEL_FIELDS,
    MAX_NOTIFICATION_TOKEN,
    REQUEST_OBJECT_CLAIMS,
    REUSE_WINDOW,
    SCOPES_SUPPORTED,
    UNLIMITED_REQUEST_LIFETIME,
    is_number,
)
from ciba_harness.provider.responses import ErrorResponses, json_response
from ciba_harness.provider.settings import REQUEST_SIGNING_ALGS
from ciba_harness.provider.state import Part, ProviderState, Transaction

_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_DIGITS = re.compile(r"^[0-9]{1,10}$")


class BackchannelEndpoint(Part):
    """POST /backchannel."""

    def __init__(
        self, state: ProviderState, auth: ClientAuthenticator, users: UserResolver,
        notifier: Notifier, errors: ErrorResponses,
    ):
        super().__init__(state)
        self.auth = auth
        self.users = users
        self.notifier = notifier
        self.errors = errors
        #: fault auth_req_id_low_entropy: auth_req_ids are a counter
        self._counter = 0
        #: fault auth_req_id_reused: the last transaction of each identical request
        self._reuse: dict[tuple[Any, ...], Transaction] = {}

    async def handle(self, request: Request) -> Response:
        f = self.faults
        client: Client | None = None
        form: Form | None = None
        try:
            form = await read_form(request, empty_is_absent=self.policy.empty_params_omitted)
            if form.repeated and not f.repeated_param_accepted:
                raise invalid_request(f"parameter {form.repeated[0][:40]} repeated")
            client = self.auth.authenticate(request, form, backchannel=True)
            if not client.ciba_allowed and not f.non_ciba_client_can_request:
                raise OAuthError("unauthorized_client", "client is not allowed to use CIBA")
            if self.fapi and client.delivery_mode == "push" and not f.fapi_push_allowed:
                # FAPI-CIBA-03: no push mode
                raise OAuthError("unauthorized_client", "FAPI-CIBA does not allow push mode")
            params = self._authentication_parameters(form, client)
            tx = self._new_transaction(params, client, form)
        except OAuthError as err:
            if client is not None and form is not None and f.ping_for_rejected_request:
                self.notifier.ping_for_rejected(client, form)
            return self.errors.response(err, "backchannel")
        return self._ack(tx)

    def _authentication_parameters(self, form: Form, client: Client) -> dict[str, str | int]:
        f = self.faults
        if "request_uri" in form:
            raise invalid_request("request_uri is not supported at the backchannel endpoint")
        raw = form.get("request")
        if raw is None:
            if client.sign_requests and not f.unsigned_accepted_for_signing_client:
                raise invalid_request("this client must send a signed authentication request")
            if self.fapi and not f.fapi_unsigned_request_accepted:
                # FAPI-CIBA-06 (ID1 5.2.2-6, the certification suite): signed requests only
                raise invalid_request("FAPI-CIBA: the authentication request must be signed")
            return {k: form.values[k] for k in AUTH_PARAMS if k in form.values}
        outside = [k for k in AUTH_PARAMS if k in form.values]
        if outside:
            raise invalid_request(
                f"{outside[0]} must be inside the request object, not a form field"
            )
        claims = self._verify_request_object(raw, client)
        params: dict[str, str | int] = {}
        for name in AUTH_PARAMS:
            value = claims.get(name)
            if value is None:
                continue
            if name == "requested_expiry":
                if isinstance(value, str):
                    if f.requested_expiry_string_refused:
                        raise invalid_request("requested_expiry must be a number")
                elif not isinstance(value, int) or isinstance(value, bool):
                    raise invalid_request("requested_expiry must be an integer")
            elif not isinstance(value, str):
                raise invalid_request(f"{name} in the request object must be a string")
            if value == "":
                continue
            params[name] = value
        return params

    def _verify_request_object(self, raw: str, client: Client) -> dict[str, Any]:
        f = self.faults
        if jose.segment_count(raw) == 5:
            raise invalid_request("encrypted request objects are not supported")
        try:
            jws = jose.parse_jws(raw)
        except jose.JoseError:
            raise invalid_request("request is not a signed JWT") from None
        alg = jws.alg
        if alg == "none":
            if not f.alg_none_request_accepted:
                raise invalid_request("unsigned request objects are not accepted")
        elif alg.startswith("HS"):
            if not f.hs256_request_accepted:
                raise invalid_request("request objects must carry an asymmetric signature")
            if client.secret is not None and not jose.verify(jws, client.secret):
                raise invalid_request("request object signature invalid")
        else:
            if alg not in REQUEST_SIGNING_ALGS:
                raise invalid_request("request object alg not supported")
            if self.fapi and alg not in FAPI_ALGS and not f.fapi_rs256_request_accepted:
                raise invalid_request(f"FAPI-CIBA: request objects must be signed with "
                                      f"{' or '.join(FAPI_ALGS)}")
            if (
                client.request_signing_alg is not None
                and alg != client.request_signing_alg
                and not f.request_alg_mismatch_accepted
            ):
                raise invalid_request(
                    f"request object must be signed with {client.request_signing_alg}"
                )
            if not f.request_signature_not_checked:
                if not client.keys:
                    raise invalid_request("client has no registered key for signed requests")
                if not any(jose.verify(jws, k) for k in client.keys):
                    raise invalid_request("request object signature invalid")
        claims = jws.claims
        now = time.time()
        skew = self.state.clock_skew
        lifetime = self.settings.request_object_max_lifetime
        if self.fapi:
            # FAPI-CIBA-07: at most 60 minutes between nbf and exp, nbf at most 60 minutes old
            lifetime = (
                max(lifetime, UNLIMITED_REQUEST_LIFETIME)
                if f.fapi_request_lifetime_unlimited
                else min(lifetime, FAPI_REQUEST_LIFETIME)
            )
        if not f.request_aud_not_checked:
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if self.issuer not in auds:
                raise invalid_request("request object aud must be the issuer")
        if not f.request_iss_not_checked and claims.get("iss") != client.client_id:
            raise invalid_request("request object iss must be the client_id")
        exp = claims.get("exp")
        if not f.request_exp_not_checked and not (is_number(exp) and exp > now):
            raise invalid_request("request object exp missing or expired")
        iat = claims.get("iat")
        if iat is None:
            if not f.request_iat_not_required:
                raise invalid_request("request object iat missing")
        elif not is_number(iat) or iat > now + skew:
            raise invalid_request("request object iat invalid or in the future")
        if not f.request_nbf_not_checked:
            nbf = claims.get("nbf")
            if not is_number(nbf):
                raise invalid_request("request object nbf missing")
            if nbf > now + skew:
                raise invalid_request("request object nbf in the future")
            if nbf < now - lifetime:
                raise invalid_request("request object too old (nbf)")
            if is_number(exp) and exp - nbf > lifetime:
                raise invalid_request("request object lifetime (exp - nbf) too long")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            if not f.request_jti_not_required:
                raise invalid_request("request object jti missing")
        else:
            key = (client.client_id, jti)
            if key in self.state.request_jtis:
                raise invalid_request("request object jti replayed")
            until = time.monotonic() + (
                min(max(exp - now, 0.0), float(lifetime)) if is_number(exp) else float(lifetime)
            ) + skew
            self.state.request_jtis[key] = until
            self.state.remember("rj", key, until)
        if f.request_unknown_claim_refused:
            unknown = [k for k in claims if k not in REQUEST_OBJECT_CLAIMS]
            if unknown:
                raise invalid_request(f"unknown claim {unknown[0][:40]} in the request object")
        return claims

    def _new_transaction(
        self, params: Mapping[str, str | int], client: Client, form: Form
    ) -> Transaction:
        f = self.faults
        s = self.settings
        scope = params.get("scope")
        if scope is None:
            if not f.missing_scope_accepted:
                raise invalid_request("scope is required")
            scope = "openid"
        assert isinstance(scope, str)
        scopes = scope.split(" ")
        if "openid" not in scopes:
            raise OAuthError(self.policy.scope_without_openid, "scope must contain openid")
        unknown_scopes = [x for x in scopes if x not in SCOPES_SUPPORTED]
        if unknown_scopes and self.policy.unknown_scopes == "refuse":
            raise OAuthError("invalid_scope", f"unknown scope value {unknown_scopes[0][:40]}")
        if f.scope_order_sensitive and scopes[0] != "openid":
            raise OAuthError("invalid_scope", "scope must start with openid")
        if f.unknown_parameter_refused:
            unknown = [k for k in form.values if k not in KNOWN_BACKCHANNEL_FIELDS]
            if unknown:
                raise invalid_request(f"unknown parameter {unknown[0][:40]}")
        user_id = self.users.resolve(params, client)
        if user_id in s.blocked_users:
            raise OAuthError("access_denied", "the user may not use this service", 403)
        token = params.get("client_notification_token")
        assert token is None or isinstance(token, str)
        if token is not None and client.delivery_mode == "poll" and (
            self.policy.poll_notification_token_refused
        ):
            raise invalid_request("client_notification_token is only for ping and push clients")
        if client.delivery_mode in ("ping", "push"):
            if token is None:
                if not f.missing_notification_token_accepted:
                    raise invalid_request("client_notification_token is required for ping/push")
            else:
                limit = 255 if f.long_notification_token_refused else MAX_NOTIFICATION_TOKEN
                if len(token) > limit:
                    raise invalid_request(f"client_notification_token longer than {limit}")
                if not _B64TOKEN.match(token):
                    raise invalid_request("client_notification_token is not a b64token")
        binding = params.get("binding_message")
        assert binding is None or isinstance(binding, str)
        if binding is None and self.fapi and not f.fapi_binding_message_optional:
            # FAPI-CIBA-02: a binding message (this provider knows no other unique
            # authorization context)
            raise invalid_request("FAPI-CIBA: binding_message is required")
        pattern = self.policy.binding_message_pattern
        if binding is not None and pattern is not None:
            if not re.fullmatch(pattern, binding):
                raise OAuthError("invalid_binding_message",
                                 f"binding_message must match {pattern}")
        elif binding is not None and (
            len(binding) > s.binding_message_max or not _PRINTABLE.match(binding)
        ):
            raise OAuthError(
                "invalid_binding_message",
                f"binding_message must be at most {s.binding_message_max} printable ASCII "
                "characters",
            )
        if client.user_code_required or (
            self.policy.user_code_any_client and "user_code" in params
        ):
            code = params.get("user_code")
            if code is None:
                if not f.missing_user_code_accepted:
                    raise OAuthError("missing_user_code", "user_code is required for this client")
            else:
                expected = s.users[user_id].user_code
                ok = expected is not None and hmac.compare_digest(
                    expected.encode(), str(code).encode("utf-8", "surrogatepass")
                )
                if not ok and not f.wrong_user_code_accepted:
                    raise OAuthError("invalid_user_code", "user_code is not valid")
        expires_in = s.default_expires_in
        requested = params.get("requested_expiry")
        if requested is not None:
            if isinstance(requested, str):
                if not _DIGITS.match(requested):
                    raise invalid_request("requested_expiry must be a positive integer")
                requested = int(requested)
            if not 0 < requested <= s.max_requested_expiry:
                raise invalid_request(
                    f"requested_expiry must be between 1 and {s.max_requested_expiry}"
                )
            if self.policy.honour_requested_expiry:
                expires_in = requested
        acr_values = params.get("acr_values")
        assert acr_values is None or isinstance(acr_values, str)
        keep = self.policy.unknown_scopes == "keep"
        granted = " ".join(x for x in dict.fromkeys(scopes) if keep or x in SCOPES_SUPPORTED)

        now = time.monotonic()
        self.state.purge(now)
        # identical = same client, user and parameters except the binding message
        reuse_key = (client.client_id, user_id, granted, expires_in, acr_values, token,
                     params.get("user_code"))
        if f.auth_req_id_reused:
            earlier = self._reuse.get(reuse_key)
            if earlier is not None:
                self.state.check_expiry(earlier, now)
                if earlier.state == "pending" and time.time() - earlier.created_at < REUSE_WINDOW:
                    return earlier
        tx = Transaction(
            auth_req_id=self._new_auth_req_id(),
            client_id=client.client_id,
            user_id=user_id,
            scope=granted,
            requested_scope=" ".join(dict.fromkeys(scopes)),
            mode=client.delivery_mode,
            created_at=time.time(),
            expires_at=now + expires_in,
            expires_in=expires_in,
            interval=s.interval,
            acr_values=acr_values,
            binding_message=binding,
            notification_token=token,
        )
        self.state.transactions[tx.auth_req_id] = tx
        self.state.pending[tx.auth_req_id] = tx
        if f.auth_req_id_reused:
            self._reuse[reuse_key] = tx
        self.state.remember("tx", tx.auth_req_id, tx.expires_at + s.transaction_retention)
        if tx.mode == "push" or (tx.mode == "ping" and self.policy.ping_on_expiry):
            tx.timer = asyncio.get_running_loop().call_later(
                expires_in, self.notifier.expire, tx.auth_req_id
            )
        if self.state.webhook_url:
            self.notifier.call_webhook(tx)
        return tx

    def _new_auth_req_id(self) -> str:
        f = self.faults
        if f.auth_req_id_low_entropy:
            self._counter += 1
            return f"{self._counter:020d}"
        if f.auth_req_id_bad_charset:
            raw = secrets.token_urlsafe(27).replace("-", "+").replace("_", "+")
            return f"{raw[:18]}+{raw[18:]}"
        if self.policy.auth_req_id_dotted:
            return f"{secrets.token_hex(16)}.{secrets.token_hex(16)}"  # 256 bits, hex and a dot
        return secrets.token_urlsafe(27)  # 216 bits, A-Za-z0-9-_

    def _ack(self, tx: Transaction) -> Response:
        f = self.faults
        body: dict[str, Any] = {}
        if not f.ack_without_auth_req_id:
            body["auth_req_id"] = tx.auth_req_id
        body["expires_in"] = str(tx.expires_in) if f.expires_in_as_string else tx.expires_in
        interval_faults = f.push_interval_in_ack or f.interval_as_string
        if (tx.mode != "push" and (self.policy.ack_interval or interval_faults)) or (
            f.push_interval_in_ack
        ):
            body["interval"] = str(tx.interval) if f.interval_as_string else tx.interval
        if self.policy.extra_response_members:
            body.update(EXTRA_ACK_MEMBERS)
        return json_response(
            body,
            201 if f.ack_status_201 else 200,
            self.no_store,
            "text/plain" if f.ack_content_type_text else "application/json",
        )
