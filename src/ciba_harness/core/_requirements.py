"""The requirement catalogue (imported from shared/spec/ciba-requirements.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeVar

__all__ = ["Requirement", "catalogue", "read_catalogue", "requirement_level"]


@dataclass(frozen=True)
class Requirement:
    id: str
    section: str
    level: str
    who: str
    assertion: str
    note: str
    group: str
    profile: str

    @property
    def is_mandatory(self) -> bool:
        """MUST-type rows: a broken one fails; the rest warn (SHOULD, MAY, undefined...)."""
        level = self.level.upper()
        return any(word in level for word in ("MUST", "REQUIRED", "IMPLIED")) and not (
            level.startswith(("SHOULD", "MAY"))
        )


RowT = TypeVar("RowT", bound=Requirement)


def read_catalogue(package: str, filename: str, row_type: type[RowT]) -> dict[str, RowT]:
    """ID -> row of a JSON catalogue shipped in `package` (a list of row objects, file order)."""
    text = resources.files(package).joinpath(filename).read_text("utf-8")
    return {row["id"]: row_type(**row) for row in json.loads(text)}


@cache
def catalogue() -> dict[str, Requirement]:
    return read_catalogue("ciba_harness", "requirements.json", Requirement)


def requirement_level(requirement_id: str) -> str:
    entry = catalogue().get(requirement_id)
    return entry.level if entry else "unknown"
