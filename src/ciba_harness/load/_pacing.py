"""The open (arrival-rate) workload model, on top of Locust's closed loop.

Locust is closed-loop: a user starts its next flow when the previous one ended, so when the
provider slows down the offered load drops with it and the slow period is sampled less
("coordinated omission"). With `--ciba-arrival-rate R` every flow user instead takes a slot
from one schedule per load process, starting at `R / processes` slots per second (evenly
spaced, or Poisson), sleeps until its slot and measures the flow from the *scheduled* start.
When every user is busy the slots queue up: the wait shows in `time_to_tokens` and in the
`arrival_lag` row instead of disappearing. Give enough users (at least rate x flow time);
the lag row says when there were too few.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArrivalScheduler", "Slot"]


@dataclass(frozen=True)
class Slot:
    scheduled: float  # clock value (time.perf_counter) at which the flow was meant to start
    lag: float  # seconds between the scheduled start and the moment a user took it up


@dataclass
class ArrivalScheduler:
    rate: float  # slots per second in this process
    process: str = "constant"  # constant | poisson
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    # makes an event-like object (`wait(timeout)`, `set()`): lets `retarget` wake the users
    # sleeping on slots of the old rate (gevent's Event under Locust); None: plain sleeps
    event_factory: Callable[[], Any] | None = None
    _next: float | None = None
    taken: int = 0
    generation: int = 0
    _changed: Any = None

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("arrival rate must be positive")
        if self.process not in {"constant", "poisson"}:
            raise ValueError(f"unknown arrival process {self.process!r}")

    def _gap(self) -> float:
        if self.process == "poisson":
            return self.rng.expovariate(self.rate)
        return 1.0 / self.rate

    def reserve(self) -> float:
        """Claim the next slot without waiting; returns its scheduled time."""
        now = self.clock()
        if self._next is None:
            self._next = now
        slot = self._next
        self._next += self._gap()
        self.taken += 1
        return slot

    def retarget(self, rate: float) -> None:
        """A new rate from now on (the capacity search's next step): the schedule restarts at
        the current time, and users waiting for a slot of the old rate take a new one."""
        if rate <= 0:
            raise ValueError("arrival rate must be positive")
        self.rate = rate
        self._next = None
        self.generation += 1
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def acquire(self) -> Slot:
        """Claim the next slot and sleep until it is due (cooperatively, under gevent)."""
        while True:
            generation = self.generation
            slot = self.reserve()
            wait = slot - self.clock()
            if wait > 0:
                if self.event_factory is None:
                    self.sleep(wait)
                else:
                    if self._changed is None:
                        self._changed = self.event_factory()
                    self._changed.wait(wait)
            if generation == self.generation:
                return Slot(slot, max(0.0, self.clock() - slot))

    def backlog(self) -> float:
        """Seconds by which the schedule is ahead of the clock's past (>0: slots overdue)."""
        if self._next is None:
            return 0.0
        return max(0.0, self.clock() - self._next)
