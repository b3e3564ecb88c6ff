"""What multi-task and face-verification papers report beyond Tables 2-4, from a finished run.

* **Delta-m** (Maninis et al. 2019): each multi-task row's mean relative change against the
  single-task rows, ``100/T * sum_t (M_t - M_single,t) / M_single,t`` over the tasks' accuracies
  (higher is better for both), per fold (paired: same fold, same test subjects), then mean and
  95 % CI over folds. The single-task rows are the fine-tuned ones when the run has them (the
  multi-task rows then start from the same checkpoint), else the ones trained from scratch.
* **EER** beside VAL@FAR (VAL@FAR=1e-3 is coarse when a fold has a few hundred negative pairs: one
  false accept moves the FAR by more than 1e-3, so the threshold sits at the largest negative distance
  below it).
* **Verification accuracy by pair kind**: probes with a "required" expression (happy, surprise) vs
  the other expressions, at the fold's primary threshold (chosen on the same model's validation pairs).
* **ROC curves** per method (test pairs of every fold pooled), **expression confusion matrices**
  (test images of every fold), and a **method comparison** plot (mean and 95 % CI per method).

``write_analyses(run_dir, per_fold, methods)`` writes them under ``<run_dir>/analyses/`` and returns
a Markdown section for results.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dynamic_mtl import verification
from experiments import markdown
from experiments.face_expression.distances import load_distances
from experiments.face_expression.figures.plots import pyplot
from experiments.statistics import mean_ci

#: single-task rows per task accuracy: (trained from scratch, fine-tuned from the checkpoint)
SINGLE_TASK_ROWS = {
    "verification_accuracy": ("single_task_face", "single_task_face_finetuned"),
    "expression_accuracy": ("single_task_expression", "single_task_expression_finetuned"),
}


def _percent(value: float) -> str:
    return "-" if not np.isfinite(value) else f"{value:.2f}"


#: the Markdown columns of the Delta-m and the verification-details tables
DELTA_M_COLUMNS = (
    markdown.Column("Method", "label", "text"),
    markdown.Column("Delta-m (%)", "delta_m", "{:+.2f}"),
    markdown.Column("95 % CI", "ci", "text"),
)
DETAIL_COLUMNS = (
    markdown.Column("Method", "label", "text"),
    markdown.Column("EER", "eer", _percent),
    markdown.Column("Happy/surprise probes", "accuracy_required_pairs", _percent),
    markdown.Column("Other probes", "accuracy_other_pairs", _percent),
)
#: pair kinds by the probe's expression (data_prep/pairs.py)
PAIR_GROUPS = {"required": ("same_required", "diff_required"), "other": ("same_other", "diff_other")}


def single_task_baselines(per_fold: pd.DataFrame) -> dict[str, str]:
    """The single-task row each task accuracy is compared with (fine-tuned when present)."""
    present = set(per_fold["method"])
    chosen = {}
    for metric, (scratch, finetuned) in SINGLE_TASK_ROWS.items():
        if finetuned in present:
            chosen[metric] = finetuned
        elif scratch in present:
            chosen[metric] = scratch
    return chosen


def delta_m(per_fold: pd.DataFrame, multitask_methods: list[str]) -> pd.DataFrame:
    """Delta-m (%) of each multi-task method against the single-task rows, per fold, with its mean
    and 95 % CI over folds. Empty when the run has no single-task row for some task."""
    baselines = single_task_baselines(per_fold)
    if set(baselines) != set(SINGLE_TASK_ROWS):
        return pd.DataFrame()
    base = {metric: per_fold[per_fold["method"] == m].set_index("fold")[metric] for metric, m in baselines.items()}
    rows = []
    for method in multitask_methods:
        part = per_fold[per_fold["method"] == method].set_index("fold")
        changes = [(part[metric] - b.reindex(part.index)) / b.reindex(part.index) for metric, b in base.items()]
        per = 100.0 * pd.concat(changes, axis=1).mean(axis=1, skipna=False)
        ci = mean_ci(per.to_numpy())
        rows.append(
            {
                "method": method,
                "delta_m": ci.mean,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "folds": ci.n,
                "baselines": " / ".join(baselines.values()),
            }
        )
    return pd.DataFrame(rows)


def verification_details(
    run_dir: Path, method: str, folds: list[int], distances: dict[int, dict] | None = None
) -> pd.DataFrame:
    """Per fold: EER on the test pairs, and the test accuracy on each pair group (:data:`PAIR_GROUPS`)
    at the threshold chosen on the same model's validation pairs. ``distances``: the method's
    files already read (:func:`experiments.face_expression.distances.load_distances`), else read here."""
    rows = []
    for fold, z in (load_distances(run_dir, method, folds) if distances is None else distances).items():
        if not len(z["test_distances"]):
            continue
        d, s = z["test_distances"], z["test_issame"].astype(bool)
        row = {"method": method, "fold": fold, "eer": verification.equal_error_rate(d, s)}
        if len(z["validation_distances"]) and "test_kind" in z:
            threshold = verification.best_threshold(z["validation_distances"], z["validation_issame"])
            kind = z["test_kind"].astype(str)
            for group, kinds in PAIR_GROUPS.items():
                keep = np.isin(kind, kinds)
                row[f"accuracy_{group}_pairs"] = (
                    verification.accuracy_at(threshold, d[keep], s[keep]) if keep.any() else np.nan
                )
        rows.append(row)
    return pd.DataFrame(rows)


def confusion(
    run_dir: Path,
    method: str,
    folds: list[int],
    num_classes: int | None = None,
    distances: dict[int, dict] | None = None,
) -> np.ndarray | None:
    """Expression confusion matrix (rows: true class, columns: predicted) over every fold's test
    images, or None when the run did not store predictions."""
    true, pred = [], []
    for z in (load_distances(run_dir, method, folds) if distances is None else distances).values():
        if "test_expression_true" not in z:
            continue
        keep = z["test_expression_true"] >= 0
        true.append(z["test_expression_true"][keep])
        pred.append(z["test_expression_pred"][keep])
    if not true:
        return None
    true, pred = np.concatenate(true), np.concatenate(pred)
    n = max(num_classes or 0, int(max(true.max(initial=0), pred.max(initial=0)) + 1))
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def plot_roc(run_dir: Path, methods: dict[str, str], folds: list[int], distances: dict[str, dict] | None = None):
    """ROC of every method (``{name: label}``), test pairs of all folds pooled (``distances``:
    ``{method: files already read}``, else read here)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for method, label in methods.items():
        loaded = (distances or {}).get(method)
        parts = list((load_distances(run_dir, method, folds) if loaded is None else loaded).values())
        if not parts:
            continue
        d = np.concatenate([z["test_distances"] for z in parts])
        s = np.concatenate([z["test_issame"] for z in parts]).astype(bool)
        if not len(d) or s.all() or (~s).all():
            continue
        fpr, tpr, _ = verification.roc_curve(d, s)
        ax.plot(fpr, tpr, lw=1.2, label=f"{label} (AUC {100 * verification.roc_auc(d, s):.1f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls=":")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("Face verification ROC, test pairs of all folds", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_comparison(per_fold: pd.DataFrame, labels: dict[str, str], metrics: dict[str, str]):
    """Mean and 95 % CI over folds per method, one panel per metric (``{column: title}``)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 0.45 * len(labels) + 1.5), squeeze=False)
    for ax, (column, title) in zip(axes[0], metrics.items()):
        names, means, lows, highs = [], [], [], []
        for method, label in labels.items():
            values = per_fold.loc[per_fold["method"] == method, column] if column in per_fold else pd.Series()
            ci = mean_ci(100 * values.dropna().to_numpy(float))
            if ci.n:
                names.append(label)
                means.append(ci.mean)
                lows.append(ci.mean - ci.low if np.isfinite(ci.low) else 0.0)
                highs.append(ci.high - ci.mean if np.isfinite(ci.high) else 0.0)
        y = np.arange(len(names))
        ax.errorbar(means, y, xerr=[lows, highs], fmt="o", ms=4, capsize=3, color="k")
        ax.set_yticks(y, names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"{title} (%), mean and 95 % CI over folds")
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def plot_confusion(matrix: np.ndarray, class_names: list[str] | None, title: str):
    plt = pyplot()
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    names = class_names or [str(k) for k in range(len(matrix))]
    ax.set_xticks(range(len(matrix)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(matrix)), names, fontsize=7)
    for (i, j), v in np.ndenumerate(rates):
        ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6, color="white" if v > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=130, bbox_inches="tight")
    pyplot().close(fig)


def write_analyses(
    run_dir: str | Path, per_fold: pd.DataFrame, methods: list, folds: list[int], class_names: list[str] | None = None
) -> str:
    """Writes ``<run_dir>/analyses/`` (delta_m.csv, verification_details.csv, roc.png,
    method_comparison.png, confusion_<method>.csv/.png) and returns their Markdown summary."""
    run_dir = Path(run_dir)
    out = run_dir / "analyses"
    out.mkdir(exist_ok=True)
    labels = {m.name: m.label for m in methods}
    lines = ["### Further analyses (`analyses/`)", ""]
    # every distances file read once for the details, the ROC and the confusion matrices
    distances = {
        m.name: load_distances(run_dir, m.name, folds)
        for m in methods
        if {"verification", "expression"} & set(m.reports)
    }

    multitask = [
        m.name for m in methods if m.weighting is not None and set(m.reports) >= {"verification", "expression"}
    ]
    dm = delta_m(per_fold, multitask) if multitask else pd.DataFrame()
    if len(dm):
        dm.to_csv(out / "delta_m.csv", index=False)
        lines += [
            f"Delta-m (%): mean relative change of both accuracies against the single-task rows "
            f"({dm['baselines'].iloc[0]}), per fold, mean and 95 % CI over folds.",
            "",
        ]
        rows = [
            {
                "label": labels[r["method"]],
                "delta_m": r["delta_m"],
                "ci": f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]" if np.isfinite(r["ci_low"]) else "-",
            }
            for r in dm.to_dict("records")
        ]
        lines += markdown.table(DELTA_M_COLUMNS, rows) + [""]

    verifying = [m.name for m in methods if "verification" in m.reports]
    details = pd.concat([verification_details(run_dir, m, folds, distances[m]) for m in verifying] or [pd.DataFrame()])
    if len(details):
        details.to_csv(out / "verification_details.csv", index=False)
        lines += [
            "EER and verification accuracy by probe expression (test pairs; thresholds from the same "
            "model's validation pairs), mean over folds (%).",
            "",
        ]
        rows = [
            {
                "label": labels[method],
                **{c.field: 100 * part[c.field].mean() for c in DETAIL_COLUMNS[1:] if c.field in part},
            }
            for method, part in details.groupby("method", sort=False)
        ]
        lines += markdown.table(DETAIL_COLUMNS, rows) + [""]
        _save(plot_roc(run_dir, {m: labels[m] for m in verifying}, folds, distances), out / "roc.png")

    metrics = {
        c: t
        for c, t in (("verification_accuracy", "verification accuracy"), ("expression_accuracy", "expression accuracy"))
        if c in per_fold
    }
    if metrics:
        _save(plot_comparison(per_fold, labels, metrics), out / "method_comparison.png")
    for method in [m.name for m in methods if "expression" in m.reports]:
        matrix = confusion(run_dir, method, folds, len(class_names) if class_names else None, distances[method])
        if matrix is not None:
            names = list(class_names or [])[: len(matrix)]
            names += [str(k) for k in range(len(names), len(matrix))]
            pd.DataFrame(matrix, index=names, columns=names).to_csv(out / f"confusion_{method}.csv")
            _save(
                plot_confusion(matrix, names, f"{labels[method]}: expression confusion (row %)"),
                out / f"confusion_{method}.png",
            )
    lines.append("Plots: `analyses/roc.png`, `analyses/method_comparison.png`, `analyses/confusion_<method>.png`.")
    return "\n".join(lines)
