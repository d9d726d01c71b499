"""Every rule as one registered check (`@check`), run through `CheckRunner` by all front-ends.

Importing this package registers every check, so `CHECKS` is complete.
"""

from ciba_harness.checks import (  # noqa: F401  (registration)
    _backchannel,
    _delivery,
    _fapi,
    _idtoken,
    _responses,
)
from ciba_harness.checks._registry import CHECKS, CheckInfo, CheckOutcome, CheckRunner, check

__all__ = ["CHECKS", "CheckInfo", "CheckOutcome", "CheckRunner", "check"]
