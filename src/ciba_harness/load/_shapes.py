"""Load profiles over time (step, spike, soak), as pure functions of the elapsed time.

`load/shapes.py` wraps `shape_tick` in a Locust `LoadTestShape`; the shape reads the peak
users (-u), spawn rate (-r) and duration (-t) from Locust's own options.
"""

from __future__ import annotations

import math

__all__ = ["SHAPES", "DEFAULT_DURATION", "shape_tick"]

SHAPES = ("step", "spike", "soak")
DEFAULT_DURATION = {"step": 60.0, "spike": 60.0, "soak": 3600.0}


def shape_tick(
    kind: str,
    elapsed: float,
    *,
    users: int,
    spawn_rate: float,
    duration: float,
    steps: int = 5,
) -> tuple[int, float] | None:
    """(user count, spawn rate) at `elapsed` seconds, or None when the profile is over.

    * step: `steps` equal plateaus climbing to `users` (find the knee of the latency curve)
    * spike: a fifth of `users` for 40 % of the time, all of them at once for 20 %, then the
      fifth again for 40 % (how the provider absorbs and recovers from a burst)
    * soak: ramp to `users` (at most 10 % of the time), then hold (leaks, drift, expiry
      sweeps, key rotation over hours; run with --csv-full-history)
    """
    if elapsed >= duration or users <= 0:
        return None
    fraction = elapsed / duration
    if kind == "step":
        steps = max(1, steps)
        level = min(steps, int(fraction * steps) + 1)
        return math.ceil(users * level / steps), spawn_rate
    if kind == "spike":
        base = max(1, users // 5)
        if 0.4 <= fraction < 0.6:
            return users, max(spawn_rate, float(users))  # the spike arrives at once
        return base, max(spawn_rate, float(users))
    if kind == "soak":
        return users, spawn_rate
    raise ValueError(f"unknown shape {kind!r} (known: {', '.join(SHAPES)})")
