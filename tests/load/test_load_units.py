"""The load package's pure parts, without Locust (which must never be imported by pytest)."""

from __future__ import annotations

import argparse
import base64
import random
import subprocess
import sys
from dataclasses import dataclass

import pytest

from ciba_harness import ConfigError
from ciba_harness.load import (
    MIX_PRESETS,
    PROFILES,
    ArrivalScheduler,
    AuthReqIdTracker,
    CibaError,
    DelaySpec,
    LoadSettings,
    Thresholds,
    add_arguments,
    evaluate,
    format_verdicts,
    parse_delay,
    parse_failure,
    parse_mix,
    shape_tick,
)
from ciba_harness.load.__main__ import build_command, run_time_seconds
from ciba_harness.load._metrics import RecentTokens
from ciba_harness.load._receiver import route_of


def test_package_top_level_imports_neither_locust_nor_gevent() -> None:
    code = (
        "import sys, ciba_harness.load, ciba_harness.load.__main__; "
        "bad = [m for m in ('locust', 'gevent', 'geventhttpclient') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- CibaError and failures.csv --------------------------------------------------------------
def test_ciba_error_repr_is_what_failures_csv_shows() -> None:
    assert repr(CibaError("expired_token")) == "CibaError('expired_token')"
    error = CibaError("invalid_id_token", requirement="CIBA-IDT-06")
    assert repr(error) == "CibaError('invalid_id_token', requirement='CIBA-IDT-06')"
    assert str(error) == "invalid_id_token requirement=CIBA-IDT-06"
    assert parse_failure(repr(error)) == "invalid_id_token"
    assert parse_failure("CatchResponseError('x')") is None


def test_tracker_finds_local_and_cross_worker_duplicates() -> None:
    worker_a, worker_b, master = AuthReqIdTracker(), AuthReqIdTracker(), AuthReqIdTracker()
    assert not worker_a.add("id-1", forward=True)
    assert worker_a.add("id-1", forward=True)  # local duplicate, reported by the worker
    assert not worker_b.add("id-1", forward=True)  # same id on another worker
    assert not worker_b.add("id-2", forward=True)
    assert master.merge(worker_a.drain()) == 0
    assert master.merge(worker_b.drain()) == 1  # the cross-worker duplicate
    assert worker_a.drain() == []


def test_tracker_is_capped() -> None:
    tracker = AuthReqIdTracker(limit=2)
    for index in range(5):
        tracker.add(f"id-{index}")
    assert len(tracker.seen) == 2 and tracker.saturated


def test_recent_tokens_forget_the_oldest() -> None:
    recent = RecentTokens(size=2)
    for token in ("a", "b", "c"):
        recent.add(token)
    assert "a" not in recent and "b" in recent and "c" in recent


def test_route_of_notification_tokens() -> None:
    encoded = base64.urlsafe_b64encode(b"127.0.0.1:45678").decode().rstrip("=")
    assert route_of(f"r{encoded}.abc") == "127.0.0.1:45678"
    assert route_of("plain-token") is None
    assert route_of(None) is None
    assert route_of("r!!!.x") is None


# --- delay distributions and profiles ----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "low", "high"),
    [("2", "fixed", 2, 2), ("fixed:1.5", "fixed", 1.5, 1.5), ("uniform:5,30", "uniform", 5, 30),
     ("exp:2", "exp", 0, 300), ("lognormal:40,0.5", "lognormal", 0, 300)],
)
def test_parse_delay(text: str, kind: str, low: float, high: float) -> None:
    spec = parse_delay(text)
    assert spec.kind == kind
    rng = random.Random(1)
    assert all(low <= spec.sample(rng) <= high for _ in range(200))


@pytest.mark.parametrize("text", ["uniform:5", "uniform:9,1", "gauss:1", "fixed:-1", "fixed:x", "lognormal:0,1"])
def test_parse_delay_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="--ciba-approval-delay"):
        parse_delay(text)


def test_outcome_shares_and_time_scale() -> None:
    profile = PROFILES["iot"]
    rng = random.Random(7)
    outcomes = [profile.outcome(rng) for _ in range(10_000)]
    assert outcomes.count("expire") / len(outcomes) == pytest.approx(0.20, abs=0.02)
    assert outcomes.count("deny") / len(outcomes) == pytest.approx(0.05, abs=0.01)
    fast = profile.scaled(0.1)
    assert fast.approval_delay.a == pytest.approx(4.0)
    assert fast.requested_expiry == 18 and fast.expire_after == 6
    assert PROFILES["callcentre"].approval_delay == DelaySpec("uniform", 5.0, 30.0)
    assert {m for m, _ in PROFILES["pos"].modes} == {"push", "ping"}


def test_parse_mix_and_presets() -> None:
    known = ["PollFlow", "PingFlow", "PushFlow", "BackchannelStorm"]
    assert parse_mix("pollflow=3, PingFlow", known) == {"PollFlow": 3, "PingFlow": 1}
    assert parse_mix("PollFlow=2,PushFlow=0", known) == {"PollFlow": 2}
    with pytest.raises(ConfigError, match="unknown user class"):
        parse_mix("Nope=1", known)
    with pytest.raises(ConfigError, match="selects no user class"):
        parse_mix("PollFlow=0", known)
    assert "flows" in MIX_PRESETS and MIX_PRESETS["mixed"] == ""


# --- options ------------------------------------------------------------------------------------
def _options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_settings_from_options_and_web_ui_strings() -> None:
    settings = LoadSettings.from_options(_options("--ciba-approval-delay", "uniform:1,3",
                                                  "--ciba-p95-time-to-token-ms", "4000"))
    assert settings.approval_delay == DelaySpec("uniform", 1.0, 3.0)
    assert settings.thresholds == Thresholds(p95_time_to_token_ms=4000.0)
    assert settings.config_path.name == "reference.toml"
    web = _options()
    web.ciba_max_fail_ratio = "0.01"  # the web UI hands back strings for None defaults
    web.ciba_min_flows = ""
    web.csv_prefix = "out/run"
    settings = LoadSettings.from_options(web)
    assert settings.thresholds.max_fail_ratio == 0.01 and settings.thresholds.min_flows is None
    assert str(settings.slo_file) == "out/run_slo.json"


@pytest.mark.parametrize(
    ("argv", "message"),
    [(("--ciba-deny-share", "0.7", "--ciba-expire-share", "0.5"), "must not exceed 1"),
     (("--ciba-max-fail-ratio", "2"), "outside"),
     (("--ciba-think-time", "zzz:1"), "--ciba-think-time")],
)
def test_settings_refuse(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LoadSettings.from_options(_options(*argv))


# --- the open model ----------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_arrival_schedule_paces_and_reports_lag() -> None:
    clock = FakeClock()
    scheduler = ArrivalScheduler(4.0, clock=clock, sleep=clock.sleep)
    first, second = scheduler.acquire(), scheduler.acquire()
    assert (first.scheduled, second.scheduled) == (100.0, 100.25)
    assert clock.now == 100.25 and second.lag == 0.0
    clock.now += 2.0  # every user was busy for two seconds
    late = scheduler.acquire()
    assert late.scheduled == 100.5 and late.lag == pytest.approx(1.75)
    assert scheduler.backlog() == pytest.approx(1.5)


def test_poisson_arrivals_keep_the_mean_rate() -> None:
    clock = FakeClock()
    scheduler = ArrivalScheduler(10.0, "poisson", clock=clock, sleep=clock.sleep, rng=random.Random(3))
    slots = [scheduler.reserve() for _ in range(5000)]
    assert (slots[-1] - slots[0]) / 4999 == pytest.approx(0.1, rel=0.05)
    with pytest.raises(ValueError):
        ArrivalScheduler(0.0)


# --- shapes ----------------------------------------------------------------------------------
def test_shapes() -> None:
    assert [shape_tick("step", t, users=50, spawn_rate=5, duration=50)[0] for t in (0, 10, 25, 49)] == [10, 20, 30, 50]  # type: ignore[index]
    assert shape_tick("step", 50, users=50, spawn_rate=5, duration=50) is None
    assert shape_tick("spike", 5, users=50, spawn_rate=5, duration=50) == (10, 50.0)
    assert shape_tick("spike", 25, users=50, spawn_rate=5, duration=50) == (50, 50.0)
    assert shape_tick("spike", 45, users=50, spawn_rate=5, duration=50) == (10, 50.0)
    assert shape_tick("soak", 1000, users=30, spawn_rate=2, duration=3600) == (30, 2)
    with pytest.raises(ValueError):
        shape_tick("zigzag", 1, users=1, spawn_rate=1, duration=10)


# --- the SLO gate ------------------------------------------------------------------------------
@dataclass
class Entry:
    method: str
    name: str
    num_requests: int
    num_failures: int = 0
    p95: float = 0.0

    def get_response_time_percentile(self, percent: float) -> float:
        assert percent == 0.95
        return self.p95


def test_slo_gate_is_per_row_never_aggregated() -> None:
    entries = [
        Entry("POST", "backchannel", 1000, 0, 12),
        Entry("POST", "backchannel private_key_jwt RS256", 100, 0, 80),
        Entry("POST", "token pending", 5000, 0, 3),
        Entry("CIBA", "time_to_tokens poll", 200, 1, 2400),
        Entry("CIBA", "time_to_tokens push", 100, 0, 900),
    ]
    verdicts = evaluate(entries, Thresholds(max_fail_ratio=0.01, p95_time_to_token_ms=2000,
                                            p95_backchannel_ms=50, min_flows=400))
    failed = {(v.row, v.measure) for v in verdicts if not v.passed}
    assert failed == {
        ("CIBA time_to_tokens poll", "p95 ms"),
        ("POST backchannel private_key_jwt RS256", "p95 ms"),
        ("CIBA time_to_tokens *", "completed flows"),
    }
    assert "CIBA SLO gate: " in format_verdicts(verdicts)
    assert all("Aggregated" not in v.row for v in verdicts)


def test_slo_gate_fails_when_nothing_was_measured() -> None:
    verdicts = evaluate([Entry("POST", "token", 10)], Thresholds(p95_time_to_token_ms=1000))
    assert [v.passed for v in verdicts] == [False]
    assert not Thresholds().any


# --- the wrapper -----------------------------------------------------------------------------
def test_wrapper_adds_only_missing_defaults() -> None:
    command = build_command(["-u", "5", "--csv", "x/y"], issuer="http://127.0.0.1:1", ui=False)
    assert command[1:3] == ["-m", "locust"]
    assert "--headless" in command and command.count("-u") == 1
    assert ["-r", "10"] == command[command.index("-r"): command.index("-r") + 2]
    assert command.count("--csv") == 1 and "--html" in command
    assert command[command.index("--ciba-issuer") + 1] == "http://127.0.0.1:1"
    ui = build_command(["-f", "mine.py"], issuer=None, ui=True)
    assert "--headless" not in ui and "-t" not in ui and ui.count("-f") == 1
    worker = build_command(["--worker"], issuer=None, ui=False)
    assert "--headless" not in worker and "-u" not in worker


def test_run_time_parsing() -> None:
    assert run_time_seconds("20") == 20
    assert run_time_seconds("1m30s") == 90
    assert run_time_seconds("1h") == 3600
    with pytest.raises(Exception, match="run time"):
        run_time_seconds("soon")


# --- the gevent receiver (in a gevent-patched child process, like a Locust worker) ----------
RECEIVER_SCRIPT = r"""
from gevent import monkey; monkey.patch_all()
import json, time, urllib.request, gevent
from ciba_harness import NotificationInbox
from ciba_harness.load._receiver import GeventReceiver, LoadInbox

# the core inbox's threading.Condition cooperates with gevent once patched
core = NotificationInbox(); core.expect("tok-0001", "ping")
waiter = gevent.spawn(core.wait_for, token="tok-0001", timeout=2)
ticks = gevent.spawn(lambda: [gevent.sleep(0.01) for _ in range(5)])
gevent.spawn_later(0.1, core.receive, "/cb", [("authorization", "Bearer tok-0001"),
                   ("content-type", "application/json")], b'{"auth_req_id": "a"}')
gevent.joinall([waiter, ticks], timeout=3)
assert len(waiter.value) == 1 and ticks.dead

strays = []
a, b = LoadInbox(), LoadInbox(on_stray=lambda code, note: strays.append(code))
ra, rb = GeventReceiver(a), GeventReceiver(b)
token = rb.new_token()
b.open(token, "ping")

def post(receiver, bearer, body):
    request = urllib.request.Request(receiver.url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code

started = time.monotonic()
assert post(ra, token, {"auth_req_id": "x1"}) == 204   # sent to A, owned by B: forwarded
note = b.wait(token, 2)
assert note is not None and note.auth_req_id == "x1" and note.kind == "ping", note
assert not note.violations, note.violations
assert ra.forwarded == 1 and rb.forwarded == 0
assert post(rb, token, {"auth_req_id": "x1"}) == 204   # a second ping for the same flow
b.close(token)
assert post(rb, token, {"auth_req_id": "x1"}) == 401   # after the flow: unknown to the inbox
assert post(rb, "not-a-load-token", {"auth_req_id": "y"}) == 401
assert strays == ["duplicate_notification", "duplicate_notification", "unexpected_notification"], strays
assert b.wait("never-opened", 0.1) is None
ra.stop(); rb.stop()
print("ok", round(time.monotonic() - started, 3))
"""


def test_gevent_receiver_routes_forwards_and_judges() -> None:
    result = subprocess.run([sys.executable, "-c", RECEIVER_SCRIPT], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stdout + result.stderr
