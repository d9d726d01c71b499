"""CIBA load scenarios for Locust: transport adapter, flows, metrics, SLO gates, open model.

The Locust side lives in `ciba_harness.load.users` (imported by load/locustfile.py); importing
it imports Locust, which gevent-patches the process. This package's top level does not: the
wrapper (`python -m ciba_harness.load`), the SLO gate and the profiles are safe to import
anywhere, pytest included.
"""

from ciba_harness.load._metrics import (
    CIBA_REQUEST_TYPE,
    HARNESS_CODES,
    AuthReqIdTracker,
    CibaError,
    EventSink,
    metric_name,
    parse_failure,
)
from ciba_harness.load._pacing import ArrivalScheduler, Slot
from ciba_harness.load._profiles import PROFILES, DelaySpec, FlowProfile, parse_delay, parse_mix
from ciba_harness.load._settings import ISSUER_ENV, MIX_PRESETS, LoadSettings, add_arguments
from ciba_harness.load._shapes import SHAPES, shape_tick
from ciba_harness.load._slo import SLO_EXIT_CODE, Thresholds, Verdict, evaluate, format_verdicts

__all__ = [
    "CIBA_REQUEST_TYPE",
    "HARNESS_CODES",
    "ISSUER_ENV",
    "MIX_PRESETS",
    "PROFILES",
    "SHAPES",
    "SLO_EXIT_CODE",
    "ArrivalScheduler",
    "AuthReqIdTracker",
    "CibaError",
    "DelaySpec",
    "EventSink",
    "FlowProfile",
    "LoadSettings",
    "Slot",
    "Thresholds",
    "Verdict",
    "add_arguments",
    "evaluate",
    "format_verdicts",
    "metric_name",
    "parse_delay",
    "parse_failure",
    "parse_mix",
    "shape_tick",
]
