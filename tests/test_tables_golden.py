"""results.md stays byte-identical for the same stored per-fold results (tests/golden_results.py)."""

from __future__ import annotations

import shutil

import golden_results
import pytest

from experiments.face_expression import analyses


@pytest.mark.parametrize("case", sorted(golden_results.CASES))
def test_results_md_is_byte_identical_to_the_stored_report(tmp_path, case, monkeypatch):
    # the plots of analyses/ are not part of results.md: skip drawing them to keep the test fast
    for name in ("plot_roc", "plot_comparison", "plot_confusion"):
        monkeypatch.setattr(analyses, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(analyses, "_save", lambda fig, path: None)
    stored = golden_results.ROOT / case
    run_dir = tmp_path / "run-golden"
    shutil.copytree(stored, run_dir, ignore=shutil.ignore_patterns("results.md"))
    assert golden_results.render(run_dir, case) == (stored / "results.md").read_text()
