"""The client requirement catalogue: stable IDs, a level and a spec sentence per row, the
document in step with the data, and every row either checked by the plan or said not to be."""

from __future__ import annotations

import re
from pathlib import Path

from ciba_harness.checks._registry import CHECKS
from ciba_harness.core._errors import Severity
from ciba_harness.rp import _checks as client_checks
from ciba_harness.rp._catalogue import client_catalogue, default_severity, render_markdown
from ciba_harness.rp.reference_client import CLIENT_FAULTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "client-requirements.md"
NOT_EXERCISED = {"CIBA-RP-50", "CIBA-RP-60", "CIBA-RP-61"}
#: rows judged by a generic check whose requirement the test chooses (rp_tokens_refused)
GENERIC = {"CIBA-RP-31", "CIBA-RP-32", "CIBA-RP-33", "CIBA-RP-40", "CIBA-RP-41", "CIBA-RP-42",
           "CIBA-RP-43", "CIBA-RP-44", "CIBA-RP-45", "CIBA-RP-46", "CIBA-RP-47", "CIBA-RP-49"}


def test_rows_have_ids_levels_and_sentences() -> None:
    rows = client_catalogue()
    assert len(rows) == 38
    for rid, row in rows.items():
        assert re.fullmatch(r"CIBA-RP-\d\d", rid)
        assert row.level and row.sentence and row.assertion and row.group
        assert row.who == "client"


def test_severity_rule() -> None:
    assert default_severity("CIBA-RP-12") is Severity.FAILURE  # MUST
    assert default_severity("CIBA-RP-20") is Severity.WARNING  # SHOULD
    assert default_severity("CIBA-RP-15") is Severity.WARNING  # descriptive
    assert default_severity("CIBA-RP-47") is Severity.FAILURE  # MUST (implied)


def test_document_is_rendered_from_the_data() -> None:
    assert DOC.read_text("utf-8") == render_markdown(), (
        "run: python -m ciba_harness.rp.catalogue_markdown > docs/client-requirements.md")


def test_every_row_is_checked_or_said_not_to_be() -> None:
    checked = {i.requirement for i in CHECKS.values()
               if i.function.__module__ == client_checks.__name__ and i.requirement}
    rows = set(client_catalogue())
    assert rows == checked | GENERIC | NOT_EXERCISED
    for rid in NOT_EXERCISED:
        assert "Not exercised" in client_catalogue()[rid].note
    # every checked row has a fault of the reference client that breaks it
    assert rows - NOT_EXERCISED == {f.requirement for f in CLIENT_FAULTS.values()} | {
        "CIBA-RP-48"}
