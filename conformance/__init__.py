"""The conformance suites (installed as the package `ciba_harness_conformance`).

Run: `ciba-harness conformance`, `pytest conformance` in a checkout, or
`pytest --pyargs ciba_harness_conformance` wherever the harness is installed.
"""
