"""Every rule as one registered check (`@check`), run through `CheckRunner` by all front-ends.

Importing this package registers every check, so `CHECKS` is complete.
"""

from ciba_harness.checks import _backchannel, _delivery, _fapi  # noqa: F401  (registration)
from ciba_harness.checks._registry import CHECKS, CheckInfo, CheckOutcome, CheckRunner, check

__all__ = ["CHECKS", "CheckInfo", "CheckOutcome", "CheckRunner", "check"]
