"""One `ast.parse` at a time in this process.

CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state, not per
thread: two threads parsing at once (Python code the garbage collector runs can switch
threads mid-parse) may end one of them in a spurious `SystemError: AST constructor recursion
depth mismatch` (seen on 3.11.7; python/cpython gh-106905 is about the same counter). Plain
pytest parses in one thread; the harness runs test bodies, the receiver and the embedded
provider in threads, and 3.11's traceback formatting, Hypothesis's lambda descriptions and
pytest's assertion rewriting all call `ast.parse`. The state machine test once ended in that
error, a harness error with no requirement, under two policy variants of one CI run.
"""

from __future__ import annotations

import ast
import functools
import threading
from typing import Any

__all__ = ["serialise_ast_parsing"]

_LOCK = threading.RLock()


def serialise_ast_parsing() -> None:
    """Replace `ast.parse` by a wrapper holding one process-wide lock (idempotent)."""
    if getattr(ast.parse, "_ciba_serialised", False):
        return
    original = ast.parse

    @functools.wraps(original)  # keeps the docstring; `__wrapped__` is the unguarded parse
    def parse(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(*args, **kwargs)

    parse._ciba_serialised = True  # type: ignore[attr-defined]
    ast.parse = parse
