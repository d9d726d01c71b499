"""The embedded reference provider as a separate process, on loopback.

Load runs never host the provider in the load generator's process: it would share the
generator's core and gevent's monkey-patching. `python -m ciba_harness.provider --port 0`
prints ``ciba reference provider listening on http://127.0.0.1:PORT`` once it serves; it is
started through `ciba_harness.load._provider`, which only adds TCP_NODELAY (see there).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ciba_harness.core._errors import ProviderSetupError

__all__ = ["EmbeddedProvider"]

_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def _die_with_parent() -> None:
    """In the child: SIGTERM when the parent dies, so no provider outlives its load run."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class EmbeddedProvider:
    """`python -m ciba_harness.provider` in a child process; `issuer` once it listens."""

    def __init__(
        self,
        config: Path | None = None,
        *,
        faults: Sequence[str] = (),
        start_timeout: float = 30.0,
        cpu: int | None = None,
    ) -> None:
        command = [sys.executable, "-m", "ciba_harness.load._provider", "--port", "0", "--host", "127.0.0.1"]
        if config is not None:
            command += ["--config", str(config)]
        for fault in faults:
            command += ["--fault", fault]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.issuer = self._read_issuer(start_timeout)

    def _read_issuer(self, timeout: float) -> str:
        found: list[str] = []
        lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            # keeps draining stdout after the URL, so the provider can never block on a full pipe
            assert self.process.stdout is not None
            try:
                for line in self.process.stdout:
                    if not found:
                        lines.append(line.rstrip())
                        match = _LISTENING.search(line)
                        if match:
                            found.append(match.group(1))
                            ready.set()
            except (OSError, ValueError):
                pass
            ready.set()

        reader = threading.Thread(target=read, name="provider-stdout", daemon=True)
        reader.start()
        self._reader = reader
        ready.wait(timeout)
        if not found:
            self.stop()
            shown = "\n".join(lines[-5:]) or "(no output)"
            raise ProviderSetupError(
                f"the embedded provider did not start within {timeout:.0f} s "
                f"(exit code {self.process.poll()}):\n{shown}"
            )
        return found[0]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.join(2)  # the pipe is at EOF once the provider has exited
        if self.process.stdout is not None and (reader is None or not reader.is_alive()):
            self.process.stdout.close()

    def __enter__(self) -> EmbeddedProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
