"""Load generator measures (issues 6 and 16), as ratios taken side by side in one run.

* efficiency: backchannel requests per load-generator CPU-second of the Locust storm
  scenario (FastHttpUser + the harness's core), beside a bare FastHttpUser posting the same
  prebuilt request to the same endpoint (target: >= 0.7), and beside a plain-Python
  `http.client` keep-alive loop (target: >= 0.5)
* whole poll flows per second and per generator CPU-second, and the generator's CPU share:
  with one client (client_secret_basic) and with the flows taking turns over every client
  authentication method of the reference profile (the default workload)
* scaling: two load processes against one on the same storm (target 1.6x where the
  provider is not the bottleneck; on this 2-core machine it is, see the notes)

The reference provider runs in its own process, pinned to core 0; generators on core 1
(taskset). Each generator is a child process running Locust's local runner on the scenario
classes of load/locustfile.py, measured over a window after warm-up: requests from Locust's
own stats, CPU from getrusage of that process. Locust is never imported here.

    python bench/bench_load.py          # standalone; bench/run.py calls main()
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ciba_harness.load._embedded import EmbeddedProvider  # noqa: E402

LOCUSTFILE = REPO / "load" / "locustfile.py"
WINDOW = 6.0
ROUNDS = 5

# A bare FastHttpUser: the same backchannel request, built once, posted in a loop.
# Two steps between them split the difference: Locust's catch_response, then the harness's
# transport adapter (core HttpRequest in, HttpResponse out) on the same prebuilt request.
BARE_LOCUSTFILE = r"""
import json, os
from locust import FastHttpUser, constant, task
from ciba_harness.core._http import HttpRequest
from ciba_harness.load._transport import LocustTransport, ok

REQUEST = json.loads(os.environ["CIBA_BENCH_REQUEST"])
PREBUILT = HttpRequest("POST", REQUEST["issuer"] + REQUEST["path"],
                       tuple(REQUEST["headers"].items()), REQUEST["body"].encode())


class BareBackchannel(FastHttpUser):
    host = REQUEST["issuer"]
    wait_time = constant(0)

    @task
    def post(self):
        self.client.post(REQUEST["path"], data=REQUEST["body"], headers=REQUEST["headers"],
                         name="bare backchannel")


class CaughtBackchannel(BareBackchannel):
    @task
    def post(self):
        with self.client.post(REQUEST["path"], data=REQUEST["body"], headers=REQUEST["headers"],
                              name="bare backchannel", catch_response=True) as response:
            response.success()


class AdapterBackchannel(BareBackchannel):  # the prebuilt request through LocustTransport
    def on_start(self):
        self.transport = LocustTransport(self.client)

    @task
    def post(self):
        self.transport.fire(PREBUILT, name="bare backchannel", judge=ok)
"""

LOCUST_CHILD = r"""
import importlib.util, json, resource, sys, time
cfg = json.loads(sys.argv[1])
import gevent
from locust import events
from locust.argument_parser import parse_options
from locust.env import Environment
spec = importlib.util.spec_from_file_location("ciba_locustfile", cfg["locustfile"])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
options = parse_options(["-f", cfg["locustfile"], *cfg["args"]])
env = Environment(user_classes=[getattr(module, n) for n in cfg["classes"]], events=events,
                  parsed_options=options)
runner = env.create_local_runner()
events.init.fire(environment=env, runner=runner, web_ui=None)
runner.start(cfg["users"], spawn_rate=cfg["users"])
gevent.sleep(cfg["warmup"])
def snap():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counts = {f"{e.method} {e.name}": [e.num_requests, e.num_failures] for e in env.stats.entries.values()}
    return time.perf_counter(), usage.ru_utime + usage.ru_stime, counts
if cfg.get("start_at"):
    gevent.sleep(max(0.0, cfg["start_at"] - time.time()))
a = snap()
gevent.sleep(cfg["seconds"])
b = snap()
runner.quit()
events.quitting.fire(environment=env)
counts = {k: [v[0] - a[2].get(k, [0, 0])[0], v[1] - a[2].get(k, [0, 0])[1]] for k, v in b[2].items()}
print(json.dumps({"wall": b[0] - a[0], "cpu": b[1] - a[1], "counts": counts}), flush=True)
"""

RAW_CHILD = r"""
import http.client, json, resource, sys, time
cfg = json.loads(sys.argv[1])
connection = http.client.HTTPConnection(cfg["host"], cfg["port"], timeout=10)
body = cfg["body"].encode()
statuses = {}
def one():
    connection.request("POST", cfg["path"], body=body, headers=cfg["headers"])
    response = connection.getresponse()
    response.read()
    statuses[response.status] = statuses.get(response.status, 0) + 1
end = time.perf_counter() + cfg["warmup"]
while time.perf_counter() < end:
    one()
usage = resource.getrusage(resource.RUSAGE_SELF)
started, cpu0, count = time.perf_counter(), usage.ru_utime + usage.ru_stime, 0
end = started + cfg["seconds"]
while time.perf_counter() < end:
    one()
    count += 1
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime - cpu0,
                  "count": count, "statuses": statuses}), flush=True)
"""


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    if cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        return ["taskset", "-c", str(cpu), *command]
    return command


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(script: str, config: dict[str, Any], cpu: int | None) -> subprocess.Popen[str]:
    command = _pinned([sys.executable, "-c", script, json.dumps(config)], cpu)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)


def _result(process: subprocess.Popen[str], timeout: float = 90.0) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed ({process.returncode}):\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _locust(issuer: str, classes: list[str], users: int, args: list[str], *, warmup: float,
            seconds: float = WINDOW, cpu: int | None = 1, start_at: float | None = None,
            ) -> subprocess.Popen[str]:
    config = {
        "locustfile": str(LOCUSTFILE), "classes": classes, "users": users, "warmup": warmup,
        "seconds": seconds, "start_at": start_at,
        "args": ["--ciba-issuer", issuer, "--ciba-id-token-sample", "0.1", *args],
    }
    return _spawn(LOCUST_CHILD, config, cpu)


def _bare(locustfile: Path, users: int, *, warmup: float, cpu: int | None = 1,
          user_class: str = "BareBackchannel", seconds: float = WINDOW) -> subprocess.Popen[str]:
    config = {
        "locustfile": str(locustfile), "classes": [user_class], "users": users,
        "warmup": warmup, "seconds": seconds, "start_at": None, "args": [],
    }
    return _spawn(LOCUST_CHILD, config, cpu)


STORM = ["--ciba-storm-rate", "0", "--ciba-invalid-share", "0",
         "--ciba-storm-clients", "client_secret_basic"]


def _count(result: dict[str, Any], row: str) -> tuple[int, int]:
    requests, failures = result["counts"].get(row, [0, 0])
    return int(requests), int(failures)


def _provider_share(provider: EmbeddedProvider, action: Any) -> tuple[Any, float]:
    """Run `action()` and return its value with the provider's CPU share meanwhile."""
    cpu0, wall0 = _cpu_seconds(provider.pid), time.perf_counter()
    value = action()
    return value, (_cpu_seconds(provider.pid) - cpu0) / (time.perf_counter() - wall0)


def main() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    def row(name: str, value: float, unit: str, note: str = "") -> None:
        rows.append({"name": name, "value": round(value, 3), "unit": unit, "note": note})

    with EmbeddedProvider(cpu=0 if shutil.which("taskset") else None) as provider:
        host, port = provider.issuer.removeprefix("http://").split(":")
        secret = "poll-basic-secret-6c1f0e2a"  # the reference profile's test-only secret
        raw_config = {
            "host": host, "port": int(port), "path": "/backchannel", "warmup": 1.0, "seconds": WINDOW,
            "body": "scope=openid&login_hint=alice&binding_message=Code+1234&requested_expiry=3",
            "headers": {
                "Authorization": "Basic " + base64.b64encode(f"poll-basic:{secret}".encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
            },
        }
        # 1. efficiency: raw loop, then the Locust storm, on the same endpoint and core
        raw, raw_provider = _provider_share(provider, lambda: _result(_spawn(RAW_CHILD, raw_config, 1)))
        if set(raw["statuses"]) != {"200"}:
            raise RuntimeError(f"raw loop got {raw['statuses']}")
        storm, storm_provider = _provider_share(
            provider, lambda: _result(_locust(provider.issuer, ["BackchannelStorm"], 20, STORM, warmup=2.0))
        )
        storm_count, storm_failures = _count(storm, "POST backchannel client_secret_basic")
        with tempfile.TemporaryDirectory() as folder:
            bare_file = Path(folder) / "bare_locustfile.py"
            bare_file.write_text(BARE_LOCUSTFILE, encoding="utf-8")
            os.environ["CIBA_BENCH_REQUEST"] = json.dumps({
                "issuer": provider.issuer, "path": raw_config["path"], "body": raw_config["body"],
                "headers": raw_config["headers"],
            })
            bare, bare_provider = _provider_share(
                provider, lambda: _result(_bare(bare_file, 20, warmup=2.0)))
            steps = {
                name: _result(_bare(bare_file, 20, warmup=2.0, user_class=name))
                for name in ("CaughtBackchannel", "AdapterBackchannel")
            }
            # the shared machine's noise is larger than the difference: alternate the two
            # scenarios in short rounds and keep each round's ratio
            rounds = []
            for _ in range(ROUNDS):
                one = _result(_bare(bare_file, 20, warmup=1.5, seconds=4.0))
                other = _result(_locust(provider.issuer, ["BackchannelStorm"], 20, STORM,
                                        warmup=1.5, seconds=4.0))
                rounds.append((_count(other, "POST backchannel client_secret_basic")[0] / other["cpu"])
                              / (_count(one, "POST bare backchannel")[0] / one["cpu"]))
        bare_count, bare_failures = _count(bare, "POST bare backchannel")
        bare_per_core = bare_count / bare["cpu"]
        raw_per_core = raw["count"] / raw["cpu"]
        storm_per_core = storm_count / storm["cpu"]
        row("raw http.client loop, backchannel", raw["count"] / raw["wall"], "req/s",
            f"1 connection; client CPU {raw['cpu'] / raw['wall']:.0%}, provider CPU {raw_provider:.0%}")
        row("raw loop per client core", raw_per_core, "req/cpu-s", "requests per CPU-second of the loop")
        row("locust storm, backchannel", storm_count / storm["wall"], "req/s",
            f"20 users, {storm_failures} failures; generator CPU {storm['cpu'] / storm['wall']:.0%}, "
            f"provider CPU {storm_provider:.0%}")
        row("locust storm per generator core", storm_per_core, "req/cpu-s",
            "FastHttpUser + core builders + transport adapter + CIBA checks")
        row("efficiency locust / raw (per core)", storm_per_core / raw_per_core, "ratio", "target >= 0.5")
        row("bare FastHttpUser, backchannel", bare_count / bare["wall"], "req/s",
            f"20 users, prebuilt request, {bare_failures} failures; generator CPU "
            f"{bare['cpu'] / bare['wall']:.0%}, provider CPU {bare_provider:.0%}")
        row("bare FastHttpUser per generator core", bare_per_core, "req/cpu-s",
            "the same request built once: Locust's own floor")
        row("efficiency CIBA storm / bare FastHttpUser (per core)", storm_per_core / bare_per_core,
            "ratio", "target >= 0.7 (this pair of runs)")
        ordered = sorted(rounds)
        row(f"efficiency CIBA storm / bare FastHttpUser, median of {ROUNDS} alternating rounds",
            ordered[len(ordered) // 2], "ratio",
            f"target >= 0.7; rounds {', '.join(f'{r:.2f}' for r in rounds)}")
        for name, label in (("CaughtBackchannel", "bare + catch_response"),
                            ("AdapterBackchannel", "bare + the harness's transport adapter")):
            count = _count(steps[name], "POST bare backchannel")[0]
            row(f"{label} / bare (per core)", count / steps[name]["cpu"] / bare_per_core, "ratio",
                "the adapter fires Locust's event itself (no catch_response context manager)")

        # 2. whole poll flows (approval at once; the reference interval is 1 s)
        for label, clients in (("one client", "first"), ("every auth method", "all")):
            flows, flows_provider = _provider_share(provider, lambda clients=clients: _result(_locust(
                provider.issuer, ["PollFlow"], 150, ["--ciba-approval-delay", "fixed:0",
                                                    "--ciba-deny-share", "0", "--ciba-expire-share", "0",
                                                    "--ciba-flow-clients", clients],
                warmup=3.0, seconds=WINDOW + 2)))
            done, failed = _count(flows, "CIBA time_to_tokens poll")
            row(f"poll flows ({label})", done / flows["wall"], "flows/s",
                f"150 users, {failed} failed; provider CPU {flows_provider:.0%}")
            row(f"poll flows per generator core ({label})", done / flows["cpu"], "flows/cpu-s",
                "backchannel + device approve + token polls per flow")
            row(f"generator CPU share (poll flows, {label})", 100.0 * flows["cpu"] / flows["wall"],
                "%", "of one core, for the flow rate above")

        # 3. scaling: one load process, then two at once (unpinned: the OS spreads them)
        one, one_provider = _provider_share(provider, lambda: _result(
            _locust(provider.issuer, ["BackchannelStorm"], 20, STORM, warmup=2.0, cpu=None)))
        start_at = time.time() + 4.0

        def both() -> list[dict[str, Any]]:
            children = [_locust(provider.issuer, ["BackchannelStorm"], 20, STORM, warmup=2.0,
                                cpu=None, start_at=start_at) for _ in range(2)]
            return [_result(child) for child in children]

        two, two_provider = _provider_share(provider, both)
        one_rate = _count(one, "POST backchannel client_secret_basic")[0] / one["wall"]
        two_rate = sum(_count(r, "POST backchannel client_secret_basic")[0] / r["wall"] for r in two)
        two_cpu = sum(r["cpu"] for r in two)
        row("scaling: 2 load processes / 1", two_rate / one_rate, "ratio",
            f"{one_rate:.0f} -> {two_rate:.0f} req/s; provider CPU {one_provider:.0%} -> "
            f"{two_provider:.0%} (target 1.6x needs a provider with spare cores)")
        one_eff = _count(one, "POST backchannel client_secret_basic")[0] / one["cpu"]
        two_eff = sum(_count(r, "POST backchannel client_secret_basic")[0] for r in two) / two_cpu
        row("per-core efficiency, 2 processes / 1", two_eff / one_eff, "ratio",
            "requests per generator CPU-second; 1.0 = no cost of splitting the load")
    return rows


if __name__ == "__main__":
    started = time.perf_counter()
    table = main()
    width = max(len(str(r["name"])) for r in table)
    for entry in table:
        print(f"{entry['name']!s:{width}}  {entry['value']:>10}  {entry['unit']!s:11} {entry['note']}")
    print(f"# {time.perf_counter() - started:.0f} s", file=sys.stderr)
