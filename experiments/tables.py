"""Aggregate per-fold results into Table 2-4 and Figure 2 files (CSV + Markdown)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dynamic_mtl import verification
from experiments.paper_numbers import TABLE2, TABLE3, TABLE4

#: ``threshold_protocol`` of a fold whose thresholds come from its own model's validation pairs.
PROTOCOL_VALIDATION = "threshold from this model's validation pairs"
#: ``threshold_protocol`` of a fold without validation pairs (LFW-style, from the other folds' test pairs).
PROTOCOL_CROSSFOLD = "threshold from the other folds' pairs (no validation pairs)"


def _load_distances(run_dir: Path, method: str, folds: list[int]) -> list[tuple]:
    """``(fold, test_d, test_s, validation_d, validation_s)`` of the folds that have test pairs."""
    loaded = []
    for fold in folds:
        path = Path(run_dir) / "per_fold" / f"{method}_fold{fold}_distances.npz"
        if path.exists():
            with np.load(path) as z:
                if len(z["test_distances"]):  # a fold without test pairs has no verification metrics
                    loaded.append(
                        (fold, z["test_distances"], z["test_issame"], z["validation_distances"], z["validation_issame"])
                    )
    return loaded


def verification_by_fold(run_dir: Path, method: str, folds: list[int]) -> pd.DataFrame:
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
    """
    loaded = _load_distances(run_dir, method, folds)
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


def build_tables(per_fold: pd.DataFrame, method_specs: dict, paper_dataset: str) -> dict[str, pd.DataFrame]:
    """table2 (verification), the expression table (table3 for CK+, table4 for Oulu) and figure2."""
    tables: dict[str, pd.DataFrame] = {}
    rows2, rows_expr, rows_fig2 = [], [], []
    expr_paper = TABLE4 if paper_dataset == "oulu" else TABLE3
    for method in dict.fromkeys(per_fold["method"]):
        spec = method_specs[method]
        part = per_fold[per_fold["method"] == method]
        acc, acc_sd = _mean_std(part.get("verification_accuracy", pd.Series(dtype=float)))
        val, val_sd = _mean_std(part.get("val_at_far", pd.Series(dtype=float)))
        auc, _ = _mean_std(part.get("verification_auc", pd.Series(dtype=float)))
        cross, cross_sd = _mean_std(part.get("verification_accuracy_crossfold", pd.Series(dtype=float)))
        ex, ex_sd = _mean_std(part["expression_accuracy"])
        if method.startswith("static@"):
            rows_fig2.append(
                {
                    "w1": spec.options["weights"][0],
                    "w2": spec.options["weights"][1],
                    "verification_accuracy": acc,
                    "verification_std": acc_sd,
                    "expression_accuracy": ex,
                    "expression_std": ex_sd,
                    "folds": len(part),
                }
            )
            continue
        common = {"method": method, "label": spec.label, "folds": len(part)}
        if "verification" in spec.reports:
            rows2.append(
                {
                    **common,
                    "accuracy": acc,
                    "std": acc_sd,
                    "val_at_far_1e-3": val,
                    "val_std": val_sd,
                    "auc": auc,
                    "accuracy_crossfold": cross,
                    "crossfold_std": cross_sd,
                    "paper": TABLE2[paper_dataset].get(spec.label, np.nan),
                }
            )
        if "expression" in spec.reports:
            label = spec.label
            rows_expr.append({**common, "accuracy": ex, "std": ex_sd, "paper": expr_paper.get(label, np.nan)})
    if rows2:
        tables["table2"] = pd.DataFrame(rows2)
    if rows_expr:
        tables["table4" if paper_dataset == "oulu" else "table3"] = pd.DataFrame(rows_expr)
    if rows_fig2:
        tables["figure2"] = pd.DataFrame(rows_fig2).sort_values("w1").reset_index(drop=True)
    return tables


def _fmt(mean: float, std: float | None = None) -> str:
    if mean is None or not np.isfinite(mean):
        return "-"
    return f"{mean:.2f} ± {std:.2f}" if std is not None and np.isfinite(std) else f"{mean:.2f}"


def markdown(tables: dict[str, pd.DataFrame], header: str, paper_dataset: str) -> str:
    """The Markdown report: our numbers (mean ± std over folds) beside the paper's."""
    paper_name = {"ckplus": "CK+", "oulu": "Oulu-CASIA"}[paper_dataset]
    lines = [header, ""]
    if "table2" in tables:
        lines += [
            f"### Table 2: face verification accuracy (%), paper column: {paper_name}",
            "",
            "Ours, VAL@FAR=1e-3: thresholds chosen on each fold's own model's validation pairs "
            "(held-out training subjects). Cross-fold: LFW-style, threshold chosen on the other "
            "folds' test pairs.",
            "",
            "| Method | Ours | VAL@FAR=1e-3 | AUC | Cross-fold | Paper |",
            "|---|---|---|---|---|---|",
        ]
        for r in tables["table2"].to_dict("records"):
            lines.append(
                f"| {r['label']} | {_fmt(r['accuracy'], r['std'])} | "
                f"{_fmt(r['val_at_far_1e-3'], r['val_std'])} | {_fmt(r['auc'])} | "
                f"{_fmt(r.get('accuracy_crossfold', np.nan), r.get('crossfold_std'))} | "
                f"{_fmt(r['paper'])} |"
            )
        lines.append("")
    for key, title in (
        ("table3", "Table 3: expression recognition accuracy (%), paper column: CK+"),
        ("table4", "Table 4: expression recognition accuracy (%), paper column: Oulu-CASIA"),
    ):
        if key in tables:
            lines += [f"### {title}", "", "| Method | Ours | Paper |", "|---|---|---|"]
            for r in tables[key].itertuples():
                lines.append(f"| {r.label} | {_fmt(r.accuracy, r.std)} | {_fmt(r.paper)} |")
            lines.append("")
    if "figure2" in tables:
        lines += [
            "### Figure 2: static weight sweep (accuracy %)",
            "",
            "| w1 (verification) | Verification | Expression |",
            "|---|---|---|",
        ]
        for r in tables["figure2"].itertuples():
            lines.append(
                f"| {r.w1:.1f} | {_fmt(r.verification_accuracy, r.verification_std)} | "
                f"{_fmt(r.expression_accuracy, r.expression_std)} |"
            )
        lines.append("")
    return "\n".join(lines)
