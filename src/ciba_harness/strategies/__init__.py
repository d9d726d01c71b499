"""Hypothesis strategies for CIBA requests, composed from the protocol core's dataclasses.

A strategy never builds HTTP by itself: it draws `BackchannelParams`, `ClientAuthentication`
and `RequestObjectSpec` values (the same dataclasses the conformance tests use) and the
core's `build_backchannel_request` / `build_token_request` turn a case into a request when
it is sent, so time-bound parts (assertions, `jti`, `exp`) are fresh on every replay.

* Values: `hostile_text`, `numeric_strings`, `scopes`, `binding_messages`,
  `requested_expiries`, `random_auth_req_ids` (valid, boundary and hostile values).
* Whole cases: `backchannel_cases` and `token_cases`. A case starts from a valid request and
  applies up to a few mutations; `classify` then derives, from the request as it will be
  sent, which MUST-level requirements it breaks. `BackchannelCase.breaks` is the first of
  them (None: the provider may accept the request or refuse it).

Shrinking goes toward the plainest client, the first variant of each value, and no
mutation, so a minimal failing case carries the offending part and little else.

Modules (private; import from here): `_values` (single values), `_cases` (the case types),
`_clients` and `_params` (who sends, with which valid parameters), `_auth` (client
authentication deviations), `_request_objects` (signed request objects), `_backchannel`
(whole authentication requests and their mutations), `_oracle` (`classify`), `_tokens`
(token requests); for the fuzz suites `_judging` (the judgement of one fuzzed answer),
`_transactions` (the model of a CIBA transaction) and `_state_machine` (the machine that
drives it).
"""

from __future__ import annotations

from ciba_harness.strategies._auth import client_authentications
from ciba_harness.strategies._backchannel import backchannel_cases
from ciba_harness.strategies._cases import (
    TOKEN_REQUIREMENTS,
    BackchannelCase,
    TokenCase,
    redacted,
)
from ciba_harness.strategies._clients import backchannel_clients
from ciba_harness.strategies._judging import judge_backchannel, judge_token, keep_last_exchanges
from ciba_harness.strategies._oracle import BACKCHANNEL_REQUIREMENTS, HINTS, classify
from ciba_harness.strategies._params import backchannel_params
from ciba_harness.strategies._request_objects import (
    request_object_mutations,
    request_object_specs,
)
from ciba_harness.strategies._state_machine import make_machine
from ciba_harness.strategies._tokens import token_cases
from ciba_harness.strategies._values import (
    binding_messages,
    hostile_text,
    numeric_strings,
    random_auth_req_ids,
    requested_expiries,
    scopes,
)

__all__ = [
    "BACKCHANNEL_REQUIREMENTS",
    "HINTS",
    "TOKEN_REQUIREMENTS",
    "BackchannelCase",
    "TokenCase",
    "backchannel_cases",
    "backchannel_clients",
    "backchannel_params",
    "binding_messages",
    "classify",
    "client_authentications",
    "hostile_text",
    "judge_backchannel",
    "judge_token",
    "keep_last_exchanges",
    "make_machine",
    "numeric_strings",
    "random_auth_req_ids",
    "redacted",
    "request_object_mutations",
    "request_object_specs",
    "requested_expiries",
    "scopes",
    "token_cases",
]
