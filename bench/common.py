"""Shared pieces of the benchmarks: the server subprocess (provider + trivial endpoint), a
wrk-driven rate measurement (plain-Python keep-alive loop when wrk is not installed), and
CPU accounting of a child process."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent


@contextmanager
def bench_server(*, cpu: int | None = 0) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start bench/serve.py (pinned to one core when possible); yields (base URL, process)."""
    command = [sys.executable, str(HERE / "serve.py")]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base = process.stdout.readline().strip()
    if not base.startswith("http://127.0.0.1:"):
        process.kill()
        raise RuntimeError(f"bench server did not start: {base!r}")
    _wait_ready(base)
    try:
        yield base, process
    finally:
        process.terminate()
        process.wait(10)


def _wait_ready(base: str) -> None:
    parts = urlsplit(base)
    for _ in range(200):
        try:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
            connection.request("GET", "/trivial")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("bench server not ready")


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rate(url: str, *, method: str = "GET", body: str = "", headers: dict[str, str] | None = None,
         seconds: float = 5.0, connections: int = 32, cpu: int | None = 1) -> float:
    """Requests per second against `url` (all answers count; the caller checks correctness)."""
    headers = headers or {}
    if shutil.which("wrk"):
        return _wrk(url, method, body, headers, seconds, connections, cpu)
    return _python_loop(url, method, body, headers, seconds)


def _wrk(url: str, method: str, body: str, headers: dict[str, str], seconds: float,
         connections: int, cpu: int | None) -> float:
    lua = [f'wrk.method = "{method}"', f"wrk.body = {body!r}".replace("'", '"')]
    lua += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lua) + "\n")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", script.name, url]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30).stdout
    os.unlink(script.name)
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"wrk printed no rate:\n{output}")


def _python_loop(url: str, method: str, body: str, headers: dict[str, str], seconds: float,
                 threads: int = 4) -> float:
    parts = urlsplit(url)
    count = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.perf_counter() < stop:
            connection.request(method, parts.path, body=body.encode(), headers=headers)
            connection.getresponse().read()
            count[index] += 1
        connection.close()

    return sum(count) / run_threads(worker, threads)


def run_threads(worker: Callable[[int], None], threads: int) -> float:
    """Run `worker(0)` .. `worker(threads - 1)` in parallel threads; returns the seconds taken."""
    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started
