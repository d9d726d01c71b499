"""Approval-delay distributions, the flow parameters of each scenario, and named profiles.

A `FlowProfile` says how one simulated user behaves: which delivery modes, which hint, what
the authentication device shows, how long the user takes, and how often they deny or let the
request expire. The generic flow users take theirs from the `--ciba-*` options; the named
profiles below are fixed, documented mixes modelled on CIBA's real uses (docs/load.md).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

from ciba_harness.core._errors import ConfigError

__all__ = [
    "DelaySpec",
    "FlowProfile",
    "Outcome",
    "PROFILES",
    "parse_delay",
    "parse_mix",
]

Outcome = Literal["approve", "deny", "expire"]
Hint = Literal["login_hint", "login_hint_token", "id_token_hint"]


@dataclass(frozen=True)
class DelaySpec:
    """A delay distribution in seconds: fixed, uniform, exponential or log-normal."""

    kind: Literal["fixed", "uniform", "exp", "lognormal"]
    a: float
    b: float = 0.0
    cap: float = 300.0  # the reference provider refuses device delays above 300 s

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif self.kind == "exp":
            value = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        else:  # lognormal: a = median, b = sigma
            value = rng.lognormvariate(math.log(self.a), self.b)
        return min(max(value, 0.0), self.cap)

    def scaled(self, factor: float) -> DelaySpec:
        if self.kind == "lognormal":
            return replace(self, a=self.a * factor)
        return replace(self, a=self.a * factor, b=self.b * factor)

    @property
    def mean(self) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "exp":
            return self.a
        return self.a * math.exp(self.b**2 / 2)

    def __str__(self) -> str:
        if self.kind in {"fixed", "exp"}:
            return f"{self.kind}:{self.a:g}"
        return f"{self.kind}:{self.a:g},{self.b:g}"


def parse_delay(text: str, *, option: str = "--ciba-approval-delay") -> DelaySpec:
    """``fixed:S``, ``uniform:A,B``, ``exp:MEAN`` or ``lognormal:MEDIAN,SIGMA`` (seconds).

    A bare number means fixed. Raises ConfigError naming the option.
    """
    kind, _, rest = text.strip().partition(":")
    if not rest:
        kind, rest = "fixed", kind
    try:
        numbers = [float(part) for part in rest.split(",")]
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not KIND:NUMBERS (e.g. uniform:1,5)") from None
    arity = {"fixed": 1, "exp": 1, "uniform": 2, "lognormal": 2}
    if kind not in arity:
        raise ConfigError(f"{option}: unknown distribution {kind!r} (fixed, uniform, exp, lognormal)")
    if len(numbers) != arity[kind] or any(n < 0 or not math.isfinite(n) for n in numbers):
        raise ConfigError(f"{option}: {kind} needs {arity[kind]} non-negative number(s), got {rest!r}")
    if kind == "uniform" and numbers[0] > numbers[1]:
        raise ConfigError(f"{option}: uniform:A,B needs A <= B")
    if kind == "lognormal" and numbers[0] <= 0:
        raise ConfigError(f"{option}: lognormal median must be positive")
    return DelaySpec(kind, numbers[0], numbers[1] if len(numbers) > 1 else 0.0)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FlowProfile:
    """How one simulated user behaves in a whole CIBA flow."""

    name: str
    modes: tuple[tuple[str, int], ...]  # (delivery mode, weight)
    approval_delay: DelaySpec
    deny_share: float = 0.0
    expire_share: float = 0.0
    requested_expiry: int | None = None  # sent on every request when set
    expire_after: int = 3  # requested_expiry of the flows meant to expire
    hint: Hint = "login_hint"
    binding_message: bool = True
    think_time: DelaySpec = DelaySpec("fixed", 0.0)
    description: str = ""
    refresh_share: float = 0.0  # approved flows whose session later uses the refresh token
    refresh_after: DelaySpec = DelaySpec("uniform", 1.0, 5.0)

    def outcome(self, rng: random.Random) -> Outcome:
        draw = rng.random()
        if draw < self.expire_share:
            return "expire"
        if draw < self.expire_share + self.deny_share:
            return "deny"
        return "approve"

    def mode(self, rng: random.Random) -> str:
        total = sum(w for _, w in self.modes)
        pick = rng.uniform(0, total)
        for mode, weight in self.modes:
            pick -= weight
            if pick <= 0:
                return mode
        return self.modes[-1][0]

    def scaled(self, factor: float) -> FlowProfile:
        """Every delay and expiry multiplied by `factor` (short smoke runs of long profiles)."""
        if factor == 1.0:
            return self
        expiry = None if self.requested_expiry is None else max(2, round(self.requested_expiry * factor))
        return replace(
            self,
            approval_delay=self.approval_delay.scaled(factor),
            think_time=self.think_time.scaled(factor),
            refresh_after=self.refresh_after.scaled(factor),
            requested_expiry=expiry,
            expire_after=max(2, round(self.expire_after * factor)),
        )


# Named profiles from CIBA's real uses (documented in docs/load.md, section "Profiles").
PROFILES: dict[str, FlowProfile] = {
    "callcentre": FlowProfile(
        name="callcentre",
        description=(
            "A call-centre agent's backend authenticates the caller on their phone: the caller "
            "is identified by an identifier (login_hint), the binding message is read out to "
            "them, they approve after 5-30 s; 8 % deny, 3 % never answer. Poll mode (the "
            "agent desktop's backend polls), some ping."
        ),
        modes=(("poll", 3), ("ping", 1)),
        approval_delay=DelaySpec("uniform", 5.0, 30.0),
        deny_share=0.08,
        expire_share=0.03,
        requested_expiry=120,
        expire_after=60,
        hint="login_hint",
        binding_message=True,
        think_time=DelaySpec("uniform", 2.0, 10.0),
    ),
    "pos": FlowProfile(
        name="pos",
        description=(
            "Point of sale: a payment terminal asks the shopper's banking app to confirm; short "
            "expiry (30 s), fast approvals (1-4 s), 2 % deny, 1 % time out. The customer is "
            "identified by a token from the terminal (login_hint_token when the profile has a "
            "key for it, else login_hint). Push and ping."
        ),
        modes=(("push", 1), ("ping", 1)),
        approval_delay=DelaySpec("lognormal", 2.0, 0.4),
        deny_share=0.02,
        expire_share=0.01,
        requested_expiry=30,
        expire_after=10,
        hint="login_hint_token",
        binding_message=True,
        think_time=DelaySpec("uniform", 0.5, 2.0),
    ),
    "iot": FlowProfile(
        name="iot",
        description=(
            "IoT / smart TV: a TV app asks the account owner to approve on their phone; long "
            "approvals (log-normal, median 40 s), many requests expire unanswered (20 %), 5 % "
            "deny. Ping mode. The TV knows its user from an earlier login (id_token_hint once "
            "it has an ID token, login_hint before)."
        ),
        modes=(("ping", 1),),
        approval_delay=DelaySpec("lognormal", 40.0, 0.5),
        deny_share=0.05,
        expire_share=0.20,
        requested_expiry=180,
        expire_after=60,
        hint="id_token_hint",
        binding_message=False,
        think_time=DelaySpec("uniform", 5.0, 20.0),
        refresh_share=0.5,  # the TV stays signed in: it refreshes its access token later
        refresh_after=DelaySpec("uniform", 10.0, 30.0),
    ),
}


def parse_mix(text: str, known: list[str]) -> dict[str, int]:
    """``Class=weight,Class=weight`` (case-insensitive class names) -> {ClassName: weight}."""
    lookup = {name.lower(): name for name in known}
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight_text = part.partition("=")
        cls = lookup.get(name.strip().lower())
        if cls is None:
            raise ConfigError(f"--ciba-mix: unknown user class {name.strip()!r} (known: {', '.join(known)})")
        try:
            weight = int(weight_text) if weight_text else 1
        except ValueError:
            raise ConfigError(f"--ciba-mix: weight of {cls} must be an integer, got {weight_text!r}") from None
        if weight < 0:
            raise ConfigError(f"--ciba-mix: weight of {cls} must not be negative")
        if weight:
            mix[cls] = weight
    if not mix:
        raise ConfigError("--ciba-mix selects no user class")
    return mix
