"""The FAPI-CIBA faults, each detected by its requirement's tests only.

Each FAPI fault (and the TLS-server fault) gets its own TLS reference provider in FAPI-CIBA
mode; the TLS / mTLS / FAPI-CIBA subset of the suite runs against it with
`--ciba-profile fapi-ciba` and is judged like the CIBA fault matrix
(tests/test_fault_matrix.py): the fault's requirement gets the verdict fail (or warning, for
rows of the other FAPI base profile), and every failing test names that requirement. The
expiry tests (marker `slow`) are left out: no FAPI fault touches expiry.
CIBA_FAULTS=FAPI-CIBA-21,tls_ narrows the run like in the CIBA matrix.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from test_fault_matrix import judge, selected_faults
from tls_suite_helpers import FAPI_SUBSET, TLS_PROFILE, describe, failed, run_conformance

from ciba_harness.provider import FAULTS, start_provider

PARALLEL_SUITES = 5


def run_against(faults: tuple[str, ...], report_dir: Path):
    with start_provider(TLS_PROFILE, faults=faults, profile="fapi-ciba") as provider:
        return run_conformance(
            report_dir, "--ciba-config", str(TLS_PROFILE), "--ciba-profile", "fapi-ciba",
            "--ciba-issuer", provider.issuer, "-m", "not slow", files=FAPI_SUBSET,
        )


def test_faultless_fapi_provider_passes_the_subset(tmp_path: Path) -> None:
    process, results = run_against((), tmp_path)
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    assert not failed(results), describe(failed(results)) + "\n" + process.stdout[-3000:]
    assert results["summary"]["requirements"]["fail"] == 0
    assert results["summary"]["tests"]["passed"] > 100


def test_each_fapi_fault_is_detected_and_only_by_its_requirement(tmp_path: Path) -> None:
    faults = selected_faults("fapi-ciba")
    assert faults and all(FAULTS[name].profile == "fapi-ciba" for name in faults)

    def run(name: str) -> list[str]:
        process, results = run_against((name,), tmp_path / name)
        return judge((name,), results, process.stdout + process.stderr)

    with ThreadPoolExecutor(PARALLEL_SUITES) as pool:
        problems = [p for found in pool.map(run, faults) for p in found]
    assert not problems, f"{len(problems)} problem(s) over {len(faults)} faults:\n" + "\n".join(
        problems
    )
