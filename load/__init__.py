"""The Locust scenarios (installed as the package `ciba_harness_load`):
`locust -f $(python -c "import ciba_harness_load as m; print(m.LOCUSTFILE)")`."""

from pathlib import Path

LOCUSTFILE = str(Path(__file__).with_name("locustfile.py"))
