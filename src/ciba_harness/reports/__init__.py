"""Reports of ciba-harness: the HTML conformance report, the CIBA load report, run-to-run diff.

* `write_html_report(results, path)`: one self-contained HTML file from a results.json dict
  (the pytest plugin calls it at session end, also for failed or interrupted runs).
* `write_load_report(prefix, out)`: a self-contained HTML load report with charts from
  Locust's `--csv` files, plus `load-summary.json` beside it; `load_summary(prefix)`.
* `diff_results(old, new)`: regressions, improvements and changes between two runs.
* `cli_main(argv)`: `report diff|html|load ...` for the `ciba-harness` command.

matplotlib is imported only when a load report is drawn.
"""

from ciba_harness.reports._cli import cli_main
from ciba_harness.reports._conformance import render_html_report, write_html_report
from ciba_harness.reports._diff import DiffEntry, DiffResult, diff_results
from ciba_harness.reports._load import load_summary, write_load_report
from ciba_harness.reports._load_data import CIBA_ERROR_CODES, LOAD_SUMMARY_FORMAT, error_code_of

__all__ = [
    "CIBA_ERROR_CODES",
    "LOAD_SUMMARY_FORMAT",
    "DiffEntry",
    "DiffResult",
    "cli_main",
    "diff_results",
    "error_code_of",
    "load_summary",
    "render_html_report",
    "write_html_report",
    "write_load_report",
]
