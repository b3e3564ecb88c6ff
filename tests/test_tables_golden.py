"""results.md stays byte-identical for the same stored per-fold results (tests/golden_results.py)."""

from __future__ import annotations

import shutil

import golden_results
import pytest


@pytest.mark.parametrize("case", sorted(golden_results.CASES))
def test_results_md_is_byte_identical_to_the_stored_report(tmp_path, case):
    stored = golden_results.ROOT / case
    run_dir = tmp_path / "run-golden"
    shutil.copytree(stored, run_dir, ignore=shutil.ignore_patterns("results.md"))
    assert golden_results.render(run_dir, case) == (stored / "results.md").read_text()
