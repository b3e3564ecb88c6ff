"""Aggregate per-fold results into Table 2-4 and Figure 2 files (CSV + Markdown).

Each table is a :class:`TableSpec` in :data:`TABLES` (which methods are its rows, its CSV fields,
its Markdown columns); :func:`build_tables` and :func:`markdown_tables` render every spec the same
way. Adding a table is one spec and its test (docs/contributing.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_prep import datasets
from dynamic_mtl import verification
from experiments import markdown
from experiments.face_expression.distances import load_distances
from experiments.face_expression.methods import (
    STATIC_DEFAULT_WEIGHTS,
    MethodSpec,
    static_mtl_weights,
    with_static_weights,
)
from experiments.face_expression.paper_numbers import TABLE2, TABLE3, TABLE4

#: ``threshold_protocol`` of a fold whose thresholds come from its own model's validation pairs.
PROTOCOL_VALIDATION = "threshold from this model's validation pairs"
#: ``threshold_protocol`` of a fold without validation pairs (LFW-style, from the other folds' test pairs).
PROTOCOL_CROSSFOLD = "threshold from the other folds' pairs (no validation pairs)"


def verification_by_fold(
    run_dir: Path, method: str, folds: list[int], distances: dict[int, dict] | None = None
) -> pd.DataFrame:
    """Per-fold verification metrics of one method.

    Primary columns (``verification_accuracy``, ``val_at_far``, ``verification_auc``): each fold's
    test pairs are scored by the model that never saw that fold's subjects, at thresholds chosen on
    that same model's validation pairs (held-out training subjects; facenet's accuracy and VAL@FAR
    rules, :func:`dynamic_mtl.verification.evaluate_fold`), never on test pairs.

    Beside them, when at least 2 folds have test pairs, the LFW-style cross-fold numbers
    (``verification_accuracy_crossfold``, ``val_at_far_crossfold``): a fold's thresholds chosen on
    the other folds' test pairs, which were scored by other models. A fold without validation pairs
    takes the cross-fold numbers as its primary ones (``threshold_protocol`` says which); a fold
    with neither gets no row.

    ``distances``: the method's files already read (:func:`experiments.face_expression.distances.load_distances`).
    """
    if distances is None:
        distances = load_distances(run_dir, method, folds)
    loaded = [  # a fold without test pairs has no verification metrics
        (fold, z["test_distances"], z["test_issame"], z["validation_distances"], z["validation_issame"])
        for fold, z in distances.items()
        if len(z["test_distances"])
    ]
    if not loaded:
        return pd.DataFrame()
    cross: dict = {}
    if len(loaded) >= 2:
        d = np.concatenate([x[1] for x in loaded])
        s = np.concatenate([x[2] for x in loaded])
        f = np.concatenate([np.full(len(x[1]), x[0]) for x in loaded])
        cross = {r["fold"]: r for r in verification.evaluate_folds(d, s, f).per_fold}
    rows = []
    for fold, d, s, vd, vs in loaded:
        if len(vd):
            row = {**verification.evaluate_fold(vd, vs, d, s), "fold": fold, "threshold_protocol": PROTOCOL_VALIDATION}
        elif fold in cross:
            row = {**cross[fold], "fold": fold, "threshold_protocol": PROTOCOL_CROSSFOLD}
        else:
            continue
        row["verification_accuracy_crossfold"] = cross[fold]["accuracy"] if fold in cross else np.nan
        row["val_at_far_crossfold"] = cross[fold]["val"] if fold in cross else np.nan
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).rename(
        columns={"accuracy": "verification_accuracy", "val": "val_at_far", "auc": "verification_auc"}
    )


def _mean_std(values: pd.Series) -> tuple[float, float]:
    values = values.dropna().astype(float)
    return (float(values.mean()) * 100, float(values.std(ddof=0)) * 100) if len(values) else (np.nan, np.nan)


@dataclass(frozen=True)
class MethodRow:
    """One method's folds (mean and std over folds, in %, of any per-fold metric) and the paper column."""

    spec: MethodSpec
    part: pd.DataFrame
    paper_column: str

    def mean(self, metric: str) -> float:
        return _mean_std(self.part.get(metric, pd.Series(dtype=float)))[0]

    def std(self, metric: str) -> float:
        return _mean_std(self.part.get(metric, pd.Series(dtype=float)))[1]


@dataclass(frozen=True)
class TableSpec:
    """One table of results.md and its CSV (``<key>.csv``).

    Attributes:
        key: the CSV name and the key of :func:`build_tables`' result.
        title: the Markdown heading; ``{paper}`` is the paper column's display name.
        rows: which methods are rows.
        fields: the CSV columns, in order: name -> value of a :class:`MethodRow`.
        columns: the Markdown columns (header, CSV field, format).
        intro: a paragraph under the heading.
        paper_columns: the paper columns (data_prep/datasets.py) the table is built for.
        sort_by: a CSV column the rows are sorted by (else the methods' order).
        common_folds: each row keeps only the folds every row of the table has (a sweep whose points
            ran on different folds is compared on the same folds).
        unique_by: a CSV column whose values are kept once (the first row of each; e.g. ``static`` and
            a ``static@0.5`` row are the same point of Figure 2).
        min_rows: the table is built only with at least this many rows (a sweep needs two points).
    """

    key: str
    title: str
    rows: Callable[[MethodSpec], bool]
    fields: dict[str, Callable[[MethodRow], Any]]
    columns: tuple[markdown.Column, ...]
    intro: str = ""
    paper_columns: tuple[str, ...] = ("ckplus", "oulu")
    sort_by: str | None = None
    common_folds: bool = False
    unique_by: str | None = None
    min_rows: int = 1

    def frame(self, rows: list[MethodRow]) -> pd.DataFrame:
        frame = pd.DataFrame([{name: get(r) for name, get in self.fields.items()} for r in rows])
        if self.unique_by:
            frame = frame.drop_duplicates(self.unique_by).reset_index(drop=True)
        return frame.sort_values(self.sort_by).reset_index(drop=True) if self.sort_by else frame

    def markdown(self, frame: pd.DataFrame, paper_name: str) -> list[str]:
        lines = [f"### {self.title.format(paper=paper_name)}", ""]
        lines += [self.intro, ""] if self.intro else []
        return lines + markdown.table(self.columns, frame.to_dict("records")) + [""]


def _method_fields(paper: Callable[[MethodRow], float], **metrics: Callable[[MethodRow], Any]) -> dict:
    return {
        "method": lambda r: r.spec.name,
        "label": lambda r: r.spec.label,
        "folds": lambda r: len(r.part),
        **metrics,
        "paper": paper,
    }


def _expression_table(key: str, number: int, column: str, paper: dict[str, float]) -> TableSpec:
    return TableSpec(
        key,
        f"Table {number}: expression recognition accuracy (%), paper column: {{paper}}",
        rows=lambda m: not m.in_static_sweep and "expression" in m.reports,
        fields=_method_fields(
            lambda r: paper.get(r.spec.label, np.nan),
            accuracy=lambda r: r.mean("expression_accuracy"),
            std=lambda r: r.std("expression_accuracy"),
        ),
        columns=(
            markdown.Column("Method", "label", "text"),
            markdown.Column("Ours", "accuracy", std="std"),
            markdown.Column("Paper", "paper"),
        ),
        paper_columns=(column,),
    )


#: the tables of results.md, in order (Ming et al. 2019, Tables 2-4 and Figure 2)
TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "table2",
        "Table 2: face verification accuracy (%), paper column: {paper}",
        intro="Ours, VAL@FAR=1e-3: thresholds chosen on each fold's own model's validation pairs "
        "(held-out training subjects). Cross-fold: LFW-style, threshold chosen on the other "
        "folds' test pairs.",
        rows=lambda m: not m.in_static_sweep and "verification" in m.reports,
        fields=_method_fields(
            lambda r: TABLE2[r.paper_column].get(r.spec.label, np.nan),
            accuracy=lambda r: r.mean("verification_accuracy"),
            std=lambda r: r.std("verification_accuracy"),
            **{"val_at_far_1e-3": lambda r: r.mean("val_at_far")},
            val_std=lambda r: r.std("val_at_far"),
            auc=lambda r: r.mean("verification_auc"),
            accuracy_crossfold=lambda r: r.mean("verification_accuracy_crossfold"),
            crossfold_std=lambda r: r.std("verification_accuracy_crossfold"),
        ),
        columns=(
            markdown.Column("Method", "label", "text"),
            markdown.Column("Ours", "accuracy", std="std"),
            markdown.Column("VAL@FAR=1e-3", "val_at_far_1e-3", std="val_std"),
            markdown.Column("AUC", "auc"),
            markdown.Column("Cross-fold", "accuracy_crossfold", std="crossfold_std"),
            markdown.Column("Paper", "paper"),
        ),
    ),
    _expression_table("table3", 3, "ckplus", TABLE3),
    _expression_table("table4", 4, "oulu", TABLE4),
    TableSpec(
        "figure2",
        "Figure 2: static weight sweep (accuracy %)",
        rows=lambda m: static_mtl_weights(m) is not None,
        fields={
            "w1": lambda r: static_mtl_weights(r.spec)[0],
            "w2": lambda r: static_mtl_weights(r.spec)[1],
            "verification_accuracy": lambda r: r.mean("verification_accuracy"),
            "verification_std": lambda r: r.std("verification_accuracy"),
            "expression_accuracy": lambda r: r.mean("expression_accuracy"),
            "expression_std": lambda r: r.std("expression_accuracy"),
            "folds": lambda r: len(r.part),
        },
        columns=(
            markdown.Column("w1 (verification)", "w1", "{:.1f}"),
            markdown.Column("Verification", "verification_accuracy", std="verification_std"),
            markdown.Column("Expression", "expression_accuracy", std="expression_std"),
        ),
        sort_by="w1",
        common_folds=True,
        unique_by="w1",
        min_rows=2,
    ),
)


def build_tables(
    per_fold: pd.DataFrame, method_specs: dict, paper_dataset: str, static_weights=STATIC_DEFAULT_WEIGHTS
) -> dict[str, pd.DataFrame]:
    """Every table of :data:`TABLES` built for the paper column ``paper_dataset`` that has rows:
    table2 (verification), the expression table (table3 for CK+, table4 for Oulu) and figure2 (every
    static multi-task row, ``static`` at the run's ``static_weights`` included)."""
    method_specs = {name: with_static_weights(spec, static_weights) for name, spec in method_specs.items()}
    rows = [
        MethodRow(method_specs[method], per_fold[per_fold["method"] == method], paper_dataset)
        for method in dict.fromkeys(per_fold["method"])
    ]
    tables: dict[str, pd.DataFrame] = {}
    for spec in TABLES:
        chosen = [r for r in rows if spec.rows(r.spec)]
        if spec.common_folds and chosen:
            common = set.intersection(*(set(r.part["fold"]) for r in chosen))
            chosen = [dataclasses.replace(r, part=r.part[r.part["fold"].isin(common)]) for r in chosen]
        if paper_dataset in spec.paper_columns and chosen:
            frame = spec.frame(chosen)
            if len(frame) >= spec.min_rows:
                tables[spec.key] = frame
    return tables


def markdown_tables(tables: dict[str, pd.DataFrame], header: str, paper_dataset: str) -> str:
    """The Markdown report: our numbers (mean ± std over folds) beside the paper's."""
    paper_name = datasets.get(paper_dataset).display_name
    lines = [header, ""]
    for spec in TABLES:
        if spec.key in tables:
            lines += spec.markdown(tables[spec.key], paper_name)
    return "\n".join(lines)
