"""Numbers the figure notebooks print beside each figure, computed from a run's step logs.

Each function takes ``runs``: method -> one step log (a DataFrame of ``steps/<method>_fold<k>.csv``)
or a list of them (one per fold). Tasks are read from the logs' ``w_<task>`` columns, in weight
order; several folds are pooled (per-step statistics) or summarised by their median curve
(:func:`fold_summary`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def tasks_of(steps: pd.DataFrame) -> tuple[str, ...]:
    """The task names of a step log, in weight order (from its ``w_<task>`` columns)."""
    return tuple(c[2:] for c in steps.columns if c.startswith("w_"))


def _frames(value) -> list[pd.DataFrame]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def pooled(value) -> pd.DataFrame:
    """One frame of every step of every fold."""
    frames = _frames(value)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def fold_summary(value, low: float = 0.25, high: float = 0.75) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Median, ``low`` and ``high`` quantile curves over folds, step by step.

    Folds are aligned on their step number and cut to the shortest one; one fold gives the fold
    itself three times.
    """
    frames = _frames(value)
    length = min(len(f) for f in frames)
    columns = [c for c in frames[0].columns if c != "step" and pd.api.types.is_numeric_dtype(frames[0][c])]
    stack = np.stack([f[columns].to_numpy(float)[:length] for f in frames])
    step = frames[0]["step"].to_numpy()[:length]

    def frame(values):
        out = pd.DataFrame(values, columns=columns)
        out.insert(0, "step", step)
        return out

    return (
        frame(np.median(stack, axis=0)),
        frame(np.quantile(stack, low, axis=0)),
        frame(np.quantile(stack, high, axis=0)),
    )


def smooth(values: pd.Series, window: int) -> pd.Series:
    """Centred rolling mean (window 1: unchanged)."""
    return values.rolling(max(int(window), 1), center=True, min_periods=1).mean()


def normalised_a(steps: pd.DataFrame) -> pd.DataFrame:
    """``a_i = exp(f_i / ||f||)`` from the logged batch-mean logits: the Section 5.5 normalisation
    applied to the batch-mean f (the model normalises per sample, then averages)."""
    tasks = tasks_of(steps)
    f = steps[[f"logit_{t}" for t in tasks]].to_numpy(float)
    norm = np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return pd.DataFrame(np.exp(f / norm), columns=[f"a_{t}" for t in tasks], index=steps.index)


def weight_observations(runs: dict) -> pd.DataFrame:
    """Per method (steps of all folds pooled): mean/min/final weight of each task, the share of steps
    with ``w < 0.2``, how often the task with the largest loss has the largest weight (Figure 4's
    claim), and how often each task has the largest loss."""
    rows = []
    for method, value in runs.items():
        s = pooled(value)
        tasks = tasks_of(s)
        weights = s[[f"w_{t}" for t in tasks]].to_numpy(float)
        losses = s[[f"loss_{t}" for t in tasks]].to_numpy(float)
        hardest, heaviest = losses.argmax(axis=1), weights.argmax(axis=1)
        row = {
            "method": method,
            "folds": len(_frames(value)),
            "steps": len(s),
            "larger_loss_gets_larger_weight": float((hardest == heaviest).mean()),
        }
        for i, t in enumerate(tasks):
            row.update(
                {
                    f"mean_w_{t}": weights[:, i].mean(),
                    f"min_w_{t}": weights[:, i].min(),
                    f"steps_w_{t}_below_0.2": float((weights[:, i] < 0.2).mean()),
                    f"steps_{t}_loss_larger": float((hardest == i).mean()),
                    f"final_w_{t}": float(np.median([f[f"w_{t}"].iloc[-1] for f in _frames(value)])),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def loss_observations(runs: dict, tail: float = 0.1) -> pd.DataFrame:
    """Per method and task, on the median curve over folds: first, mean, and mean over the last
    ``tail`` share of the steps."""
    rows = []
    for method, value in runs.items():
        s = fold_summary(value)[0]
        last = s.iloc[-max(1, int(round(len(s) * tail))) :]
        for task in tasks_of(s):
            col = f"loss_{task}"
            rows.append(
                {
                    "method": method,
                    "task": task,
                    "first": s[col].iloc[0],
                    "mean": s[col].mean(),
                    f"last_{int(tail * 100)}pct": last[col].mean(),
                }
            )
    return pd.DataFrame(rows).set_index(["method", "task"])


def efficiency_observations(runs: dict, tail: float = 0.1) -> pd.DataFrame:
    """Figure 6's numbers, on each method's median curve over folds: per task and method, the steps
    and seconds until the smoothed loss first reaches the halfway level between the common start
    (mean first smoothed loss) and the best method's final loss (NaN: never), the mean loss, and the
    final (last ``tail`` of the steps) smoothed loss."""
    medians = {m: fold_summary(v)[0] for m, v in runs.items()}
    window = max(1, min(len(s) for s in medians.values()) // 20)
    rows = []
    for task in tasks_of(next(iter(medians.values()))):
        col = f"loss_{task}"
        curves = {m: smooth(s[col], window) for m, s in medians.items()}
        finals = {m: c.iloc[-max(1, int(round(len(c) * tail))) :].mean() for m, c in curves.items()}
        start = float(np.mean([c.iloc[0] for c in curves.values()]))
        best = min(finals.values())
        target = start - 0.5 * (start - best) if start > best else best
        for method, s in medians.items():
            reached = np.flatnonzero(curves[method].to_numpy() <= target)
            k = reached[0] if len(reached) else None
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "start_loss": start,
                    "target_loss": target,
                    "steps_to_target": int(s["step"].iloc[k]) if k is not None else np.nan,
                    "seconds_to_target": float(s["wall_time"].iloc[k]) if k is not None else np.nan,
                    "mean_loss": s[col].mean(),
                    "final_loss": finals[method],
                    "seconds_total": float(s["wall_time"].iloc[-1]),
                }
            )
    return pd.DataFrame(rows).set_index(["task", "method"])


def normalizes_logits(method: str) -> bool:
    """Whether the method's weight unit applies Section 5.5's normalisation: the unit its
    strategy builds from the method's options (experiments/face_expression/methods.py)."""
    from dynamic_mtl.weighting import get_weighting
    from experiments.face_expression.methods import parse_method

    spec = parse_method(method)
    if spec.weighting is None:
        return False
    unit = get_weighting(spec.weighting, num_tasks=2, **spec.options).make_weight_unit(2, **spec.unit_options)
    return unit is not None and unit.normalize_logits


def gradient_observations(runs: dict, vanish: float = 1e-6) -> pd.DataFrame:
    """Per method (steps of all folds pooled): weight-unit gradient norm statistics and the a_i
    magnitudes (raw, and as the softmax sees them)."""
    rows = []
    for method, value in runs.items():
        s = pooled(value)
        tasks = tasks_of(s)
        g = s["weight_grad_norm"]
        a = s[[f"a_{t}" for t in tasks]].max(axis=1)
        seen = normalised_a(s).max(axis=1) if normalizes_logits(method) else a
        rows.append(
            {
                "method": method,
                "steps": len(s),
                "median_grad_norm": g.median(),
                "min_grad_norm": g.min(),
                "final_grad_norm": g.iloc[-1],
                f"steps_grad_below_{vanish:g}": float((g < vanish).mean()),
                "max_a_raw": a.max(),
                "max_a_softmax_input": seen.max(),
            }
        )
    return pd.DataFrame(rows).set_index("method")


def sweep_observations(sweep: pd.DataFrame) -> pd.DataFrame:
    """Figure 2: per task, the best w1, its accuracy, and the accuracy at equal weights (w1 = 0.5)."""
    rows = []
    for task, col in (("verification", "verification_accuracy"), ("expression", "expression_accuracy")):
        valid = sweep.dropna(subset=[col])
        if not len(valid):
            continue
        best = valid.loc[valid[col].idxmax()]
        equal = valid.loc[np.isclose(valid["w1"], 0.5), col]
        rows.append(
            {
                "task": task,
                "best_w1": best["w1"],
                "best_accuracy": best[col],
                "accuracy_at_w1_0.5": equal.iloc[0] if len(equal) else np.nan,
                "best_is_equal_weights": bool(np.isclose(best["w1"], 0.5)),
            }
        )
    return pd.DataFrame(rows).set_index("task")
