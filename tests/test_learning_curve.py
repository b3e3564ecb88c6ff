"""``experiments.face_expression.learning_curve``: runs holding rows that never train."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.face_expression.learning_curve import collect


def test_a_row_without_training_epochs_has_a_test_score_and_no_curve(tmp_path):
    run = tmp_path / "run"
    (run / "per_fold").mkdir(parents=True)
    (run / "steps").mkdir()
    (run / "per_fold" / "pretrained_fold0_history.csv").write_text("\n")  # what the harness writes for it
    pd.DataFrame({"method": ["pretrained"], "fold": [0], "expression_accuracy": [0.13]}).to_csv(
        run / "per_fold.csv", index=False
    )
    steps, epochs, tests = collect({"lr": run})
    assert steps.empty and epochs.empty
    assert tests[["run", "method", "expression_accuracy"]].values.tolist() == [["lr", "pretrained", 0.13]]


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        collect({"x": tmp_path})
