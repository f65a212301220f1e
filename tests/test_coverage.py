"""docs/coverage.md is generated from the rule tables and must not go stale."""

from __future__ import annotations

import pathlib
import runpy

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "coverage.py"


def test_coverage_table_is_up_to_date_and_counts_at_least_250_functions() -> None:
    pytest.importorskip("scipy")  # the table lists the SciPy mirrors, an optional extra
    script = runpy.run_path(str(SCRIPT))
    text, total = script["table"]()
    assert total >= 250
    assert script["TARGET"].read_text() == text, "docs/coverage.md is out of date: run python scripts/coverage.py"
