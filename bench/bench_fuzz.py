"""Benchmark of the fuzzer: examples per second against the embedded reference provider over
real HTTP (loopback), beside a plain loop sending the same requests without Hypothesis.

The ratio fuzz / loop is the share of throughput left once Hypothesis generates the cases
(and would shrink them); the generation-only rate shows where the rest goes.

    python bench/bench_fuzz.py [examples]        # prints a table, about 20 s
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from ciba_harness import CibaClient, Exchange, HttpRequest, default_profile_path, load_config
from ciba_harness.provider import start_provider
from ciba_harness.strategies import BackchannelCase, TokenCase, backchannel_cases, token_cases

DEFAULT_EXAMPLES = 300


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _answered(exchange: Exchange) -> None:
    # The same minimal judgement in both loops: an answer below 500.
    if exchange.response is None or exchange.response.status >= 500:
        raise AssertionError(exchange.error or exchange.response)


def _measure(
    ciba: CibaClient,
    strategy: st.SearchStrategy[Any],
    examples: int,
) -> tuple[float, float, float, int]:
    """(fuzz examples/s, plain requests/s, generation-only cases/s, examples)."""
    metadata = ciba.metadata
    cases: list[BackchannelCase | TokenCase] = []

    def send(case: BackchannelCase | TokenCase, request: HttpRequest | None = None) -> None:
        request = request or case.build(metadata)
        _answered(ciba.send(request, label="bench", client=case.client))
        del ciba.recorder.exchanges[:]

    @_settings(examples)
    @given(strategy)
    def fuzz(case: BackchannelCase | TokenCase) -> None:
        cases.append(case)
        # A backchannel case arrives built (the strategy classifies the built request).
        send(case, case.request if isinstance(case, BackchannelCase) else None)

    generated: list[object] = []

    @_settings(examples)
    @given(strategy)
    def generate(case: BackchannelCase | TokenCase) -> None:
        generated.append(case)

    # Generation first: it also warms up the strategies (validation happens once).
    generate_seconds = _timed(generate)
    fuzz_seconds = _timed(fuzz)
    loop_seconds = _timed(lambda: [send(case) for case in cases])
    n = len(cases)
    return n / fuzz_seconds, n / loop_seconds, len(generated) / generate_seconds, n


def _timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main(examples: int = DEFAULT_EXAMPLES) -> list[dict[str, Any]]:
    """Rows {name, value, unit, note} for the fuzz throughput of both endpoints."""
    warnings.simplefilter("ignore")  # PyJWT warns about the deliberately short HMAC keys
    logging.getLogger("ciba_harness.provider").setLevel(logging.ERROR)  # dropped pushes
    config = load_config(default_profile_path())
    provider = start_provider(config.source)
    rows: list[dict[str, Any]] = []
    try:
        config = config.with_issuer(provider.issuer)
        ciba = CibaClient(config)
        try:
            for endpoint, strategy in (
                ("backchannel", backchannel_cases(config, ciba.metadata)),
                ("token", token_cases(config, ciba.metadata)),
            ):
                fuzz, loop, generation, n = _measure(ciba, strategy, examples)
                note = f"{n} derandomized examples, embedded provider over loopback HTTP"
                rows += [
                    _row(f"fuzz_{endpoint}_examples_per_s", fuzz, "examples/s", note),
                    _row(f"loop_{endpoint}_requests_per_s", loop, "requests/s",
                         "the same requests, built and sent in a plain loop"),
                    _row(f"fuzz_{endpoint}_ratio", fuzz / loop, "ratio",
                         "fuzz / plain loop (1.0 = no Hypothesis overhead)"),
                    _row(f"generate_{endpoint}_cases_per_s", generation, "cases/s",
                         "Hypothesis generation alone, no HTTP"),
                ]
        finally:
            ciba.close()
    finally:
        provider.stop()
    return rows


def _row(name: str, value: float, unit: str, note: str) -> dict[str, Any]:
    return {"name": name, "value": round(value, 3), "unit": unit, "note": note}


def _print(rows: Sequence[dict[str, Any]]) -> None:
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['value']:>10.2f} {r['unit']:<11} {r['note']}")


if __name__ == "__main__":
    _print(main(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_EXAMPLES))
