from __future__ import annotations

from typing import Any

import pytest
from report_samples import make_results


@pytest.fixture
def results() -> dict[str, Any]:
    return make_results()
