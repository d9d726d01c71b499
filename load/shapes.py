"""Load shapes for the CIBA scenarios: step, spike or soak (--ciba-shape).

    locust -f load/locustfile.py,load/shapes.py --headless -u 100 -r 20 -t 10m --ciba-shape step

-u is the peak number of users, -r the spawn rate and -t the duration (defaults: 60 s for
step and spike, 1 h for soak). Without this file on the -f list Locust runs -u users flat.
"""

from __future__ import annotations

from locust import LoadTestShape

from ciba_harness.load import shape_tick
from ciba_harness.load._shapes import DEFAULT_DURATION


class CibaShape(LoadTestShape):
    use_common_options = True  # read -u, -r and -t instead of ignoring them

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        kind = getattr(options, "ciba_shape", "step") or "step"
        duration = float(getattr(options, "run_time", None) or DEFAULT_DURATION.get(kind, 60.0))
        return shape_tick(
            kind,
            self.get_run_time(),
            users=int(getattr(options, "num_users", None) or 20),
            spawn_rate=float(getattr(options, "spawn_rate", None) or 10.0),
            duration=duration,
            steps=int(getattr(options, "ciba_shape_steps", 5) or 5),
        )
