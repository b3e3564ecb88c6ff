"""experiments/face_expression/tables.py: a table is one TableSpec; build_tables and markdown_tables render any spec."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments import markdown
from experiments.face_expression import tables
from experiments.face_expression.methods import parse_method


def _per_fold() -> pd.DataFrame:
    rows = []
    for method, acc in (("static", (0.80, 0.90)), ("dynamic", (0.85, 0.95)), ("static@0.3", (0.5, 0.7))):
        for fold, a in enumerate(acc):
            rows.append({"method": method, "fold": fold, "verification_accuracy": a, "expression_accuracy": a - 0.1})
    return pd.DataFrame(rows)


def test_a_new_table_is_one_spec(monkeypatch):
    spec = tables.TableSpec(
        "table_auc",
        "Table X: expression minus verification (points), paper column: {paper}",
        rows=lambda m: not m.in_static_sweep,
        fields={
            "label": lambda r: r.spec.label,
            "gap": lambda r: r.mean("expression_accuracy") - r.mean("verification_accuracy"),
        },
        columns=(markdown.Column("Method", "label", "text"), markdown.Column("Gap", "gap", "{:+.1f}")),
        intro="One line under the heading.",
    )
    monkeypatch.setattr(tables, "TABLES", (*tables.TABLES, spec))
    specs = {m: parse_method(m) for m in ("static", "dynamic", "static@0.3")}
    built = tables.build_tables(_per_fold(), specs, "oulu")
    assert list(built) == ["table2", "table4", "figure2", "table_auc"]
    assert built["table_auc"]["label"].tolist() == ["Static MTL", "Proposed dynamic MTL"]
    assert built["table_auc"]["gap"].tolist() == pytest.approx([-10.0, -10.0])
    md = tables.markdown_tables(built, "## header", "oulu")
    assert md.endswith(
        "### Table X: expression minus verification (points), paper column: Oulu-CASIA\n\n"
        "One line under the heading.\n\n"
        "| Method | Gap |\n|---|---|\n| Static MTL | -10.0 |\n| Proposed dynamic MTL | -10.0 |\n"
    )


def test_the_paper_column_picks_the_expression_table_and_the_sweep_is_its_own_table():
    specs = {m: parse_method(m) for m in ("static", "dynamic", "static@0.3")}
    ck = tables.build_tables(_per_fold(), specs, "ckplus")
    assert list(ck) == ["table2", "table3", "figure2"]
    assert ck["table3"]["paper"].tolist() == [99.11, 99.50]
    # the static row is the sweep's equal-weights point
    assert ck["figure2"][["w1", "w2", "folds"]].to_dict("list") == {"w1": [0.3, 0.5], "w2": [0.7, 0.5], "folds": [2, 2]}
    assert "static@0.3" not in set(ck["table2"]["method"])
    assert list(ck["table2"].columns) == [
        "method",
        "label",
        "folds",
        "accuracy",
        "std",
        "val_at_far_1e-3",
        "val_std",
        "auc",
        "accuracy_crossfold",
        "crossfold_std",
        "paper",
    ]


def test_markdown_cells():
    assert markdown.mean_std(12.345, 0.5) == "12.35 ± 0.50"
    assert markdown.mean_std(12.345, float("nan")) == "12.35"
    assert markdown.mean_std(float("nan"), 1.0) == markdown.mean_std(None) == "-"
    columns = (markdown.Column("A", "a", "text"), markdown.Column("B", "b", std="b_sd"))
    assert markdown.table(columns, [{"a": "x", "b": 1.0, "b_sd": 0.25}, {"a": "y"}]) == [
        "| A | B |",
        "|---|---|",
        "| x | 1.00 ± 0.25 |",
        "| y | - |",
    ]


def test_the_sweep_compares_its_points_on_the_folds_they_share():
    rows = [
        {"method": m, "fold": f, "verification_accuracy": acc, "expression_accuracy": acc}
        for m, folds, acc in (("static@0.2", range(10), 0.9), ("static@0.8", range(3), 0.5))
        for f in folds
    ]
    rows[5]["verification_accuracy"] = rows[5]["expression_accuracy"] = 0.0  # static@0.2, fold 5: not shared
    specs = {m: parse_method(m) for m in ("static@0.2", "static@0.8")}
    sweep = tables.build_tables(pd.DataFrame(rows), specs, "ckplus")["figure2"].set_index("w1")
    assert sweep["folds"].tolist() == [3, 3]
    assert sweep.loc[0.2, "verification_accuracy"] == pytest.approx(90.0)


def test_the_sweep_takes_the_static_row_at_the_runs_weights_once():
    """``static`` is a point of Figure 2 at the run's ``static_weights``; a ``static@W`` row at the same
    weights is the same point (one row); single-task rows (weights (1, 0) / (0, 1)) are not points."""
    methods = ("single_task_face", "static", "static@0.2", "static@0.5")
    rows = [
        {"method": m, "fold": f, "verification_accuracy": 0.9, "expression_accuracy": 0.8}
        for m in methods
        for f in (0, 1)
    ]
    specs = {m: parse_method(m) for m in methods}
    sweep = tables.build_tables(pd.DataFrame(rows), specs, "ckplus")["figure2"]
    assert sweep["w1"].tolist() == [0.2, 0.5]
    specs.pop("static@0.5")
    rows = [r for r in rows if r["method"] != "static@0.5"]
    sweep = tables.build_tables(pd.DataFrame(rows), specs, "ckplus", static_weights=[0.7, 0.3])["figure2"]
    assert sweep[["w1", "w2"]].to_dict("list") == {"w1": [0.2, 0.7], "w2": [0.8, 0.3]}
