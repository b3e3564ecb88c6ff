"""Load run files and draw Figures 2 and 4-7 of Ming et al. 2019 (used by notebooks/figure*.ipynb).

Everything here reads a finished run directory (``results/<dataset>/<run-id>``, see
experiments/run.py); only :func:`resolve_run` may train, and only when no suitable run exists.
The paper numbers its tasks the other way round from our column names: in Figures 4-5
"Task 1" is facial expression and "Task 2" face verification (our ``identity``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TASKS = ("identity", "expression")
TASK_LABEL = {"identity": "face verification (paper: Task 2)", "expression": "expression (paper: Task 1)"}
TASK_COLOR = {"identity": "tab:blue", "expression": "tab:red"}   # the paper's FV blue, EX red
METHOD_LABEL = {"naive_dynamic": "naive dynamic", "dynamic": "proposed dynamic",
                "dynamic_published": "proposed, published code (no normalisation)"}

#: what each kind of run must hold, and the config that produces it when none exists
KINDS = {
    "table2": {"methods": ("naive_dynamic", "dynamic"), "file": None, "config": "quick"},
    "figure2": {"methods": (), "file": "figure2.csv", "config": "figure2"},
    "figure7": {"methods": ("dynamic_published", "dynamic"), "file": None, "config": "figure7"},
}


# ---------------------------------------------------------------------- finding and loading runs
def run_kinds(run_dir: str | Path) -> list[str]:
    """The kinds of :data:`KINDS` a finished run directory can draw (needs per_fold.csv)."""
    run_dir = Path(run_dir)
    if not (run_dir / "per_fold.csv").is_file():
        return []
    logged = {p.stem.rsplit("_fold", 1)[0] for p in (run_dir / "steps").glob("*_fold*.csv")}
    return [kind for kind, need in KINDS.items()
            if set(need["methods"]) <= logged and (need["file"] is None or (run_dir / need["file"]).is_file())]


def find_run(kind: str, results_dir: str | Path = "results", dataset: str = "synthfaces") -> Path | None:
    """The most recently finished run of ``kind`` under ``results_dir/dataset``, or None."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    base = Path(results_dir) / dataset
    runs = [d for d in base.glob("*") if d.is_dir() and kind in run_kinds(d)] if base.is_dir() else []
    return max(runs, key=lambda d: (d / "per_fold.csv").stat().st_mtime) if runs else None


def resolve_run(run_dir: str | Path | None, kind: str, results_dir: str | Path = "results",
                dataset: str = "synthfaces", data_dir: str | None = None, progress: bool = True) -> Path:
    """``run_dir`` if given, else the latest run of ``kind``; if there is none, run the kind's
    profile (quick, figure2 or figure7) on ``dataset`` first, with a progress bar."""
    if run_dir:
        run_dir = Path(run_dir)
        if kind not in run_kinds(run_dir):
            need = KINDS[kind]
            raise FileNotFoundError(f"{run_dir} is not a finished {kind} run (needs per_fold.csv, steps of "
                                    f"{list(need['methods'])}{' and ' + need['file'] if need['file'] else ''})")
        return run_dir
    found = find_run(kind, results_dir, dataset)
    if found is not None:
        return found
    from experiments.config import ExperimentConfig
    from experiments.run import run_experiment

    config = ExperimentConfig.load(KINDS[kind]["config"]).override(results_dir=str(results_dir), dataset=dataset,
                                                                  data_dir=data_dir)
    print(f"no finished {kind} run under {Path(results_dir) / dataset}: running the {config.name} profile first",
          flush=True)
    return run_experiment(config, progress=progress)


def load_config(run_dir: str | Path) -> dict:
    import yaml

    return yaml.safe_load((Path(run_dir) / "config.yaml").read_text())


def load_steps(run_dir: str | Path, method: str, fold: int | None = None) -> pd.DataFrame:
    """Per-step log of one method on one fold (``fold=None``: the lowest logged fold)."""
    steps = Path(run_dir) / "steps"
    if fold is None:
        folds = sorted(int(p.stem.rsplit("_fold", 1)[1]) for p in steps.glob(f"{method}_fold*.csv"))
        if not folds:
            raise FileNotFoundError(f"no step log for {method!r} in {steps}")
        fold = folds[0]
    path = steps / f"{method}_fold{fold}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return pd.read_csv(path)


def load_figure2(run_dir: str | Path) -> pd.DataFrame:
    """The static-weight sweep (percentages), sorted by w1."""
    return pd.read_csv(Path(run_dir) / "figure2.csv").sort_values("w1").reset_index(drop=True)


def smooth(values: pd.Series, window: int) -> pd.Series:
    """Centred rolling mean (window 1: unchanged)."""
    return values.rolling(max(int(window), 1), center=True, min_periods=1).mean()


def normalised_a(steps: pd.DataFrame) -> pd.DataFrame:
    """``a_i = exp(f_i / ||f||)`` from the logged batch-mean logits: the Section 5.5 normalisation
    applied to the batch-mean f (the model normalises per sample, then averages)."""
    f = steps[[f"logit_{t}" for t in TASKS]].to_numpy(float)
    norm = np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    return pd.DataFrame(np.exp(f / norm), columns=[f"a_{t}" for t in TASKS], index=steps.index)


# ---------------------------------------------------------------------- observations (printed by notebooks)
def weight_observations(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per method: mean/min/final weights, and how often the task with the larger loss has the larger weight."""
    rows = []
    for method, s in runs.items():
        harder_is_identity = s["loss_identity"] > s["loss_expression"]
        heavier_is_identity = s["w_identity"] > s["w_expression"]
        rows.append({"method": method, "steps": len(s),
                     "mean_w_identity": s["w_identity"].mean(), "mean_w_expression": s["w_expression"].mean(),
                     "min_w_identity": s["w_identity"].min(), "final_w_identity": s["w_identity"].iloc[-1],
                     "steps_w_identity_below_0.2": float((s["w_identity"] < 0.2).mean()),
                     "larger_loss_gets_larger_weight": float((harder_is_identity == heavier_is_identity).mean()),
                     "steps_identity_loss_larger": float(harder_is_identity.mean())})
    return pd.DataFrame(rows).set_index("method")


def loss_observations(runs: dict[str, pd.DataFrame], tail: float = 0.1) -> pd.DataFrame:
    """Per method and task: first, mean, and mean over the last ``tail`` share of the steps."""
    rows = []
    for method, s in runs.items():
        last = s.iloc[-max(1, int(round(len(s) * tail))):]
        for task in TASKS:
            col = f"loss_{task}"
            rows.append({"method": method, "task": task, "first": s[col].iloc[0], "mean": s[col].mean(),
                         f"last_{int(tail * 100)}pct": last[col].mean()})
    return pd.DataFrame(rows).set_index(["method", "task"])


def efficiency_observations(runs: dict[str, pd.DataFrame], tail: float = 0.1) -> pd.DataFrame:
    """Per task and method: steps and seconds until the smoothed loss first reaches the halfway level
    between the common start (mean first smoothed loss) and the best method's final loss (NaN: never),
    the mean loss, and the final (last ``tail`` of the steps) smoothed loss."""
    window = max(1, min(len(s) for s in runs.values()) // 20)
    rows = []
    for task in TASKS:
        col = f"loss_{task}"
        curves = {m: smooth(s[col], window) for m, s in runs.items()}
        finals = {m: c.iloc[-max(1, int(round(len(c) * tail))):].mean() for m, c in curves.items()}
        start = float(np.mean([c.iloc[0] for c in curves.values()]))
        best = min(finals.values())
        target = start - 0.5 * (start - best) if start > best else best
        for method, s in runs.items():
            reached = np.flatnonzero(curves[method].to_numpy() <= target)
            k = reached[0] if len(reached) else None
            rows.append({"task": task, "method": method, "start_loss": start, "target_loss": target,
                         "steps_to_target": int(s["step"].iloc[k]) if k is not None else np.nan,
                         "seconds_to_target": float(s["wall_time"].iloc[k]) if k is not None else np.nan,
                         "mean_loss": s[col].mean(), "final_loss": finals[method],
                         "seconds_total": float(s["wall_time"].iloc[-1])})
    return pd.DataFrame(rows).set_index(["task", "method"])


def _normalizes_logits(method: str) -> bool:
    """Whether the method's weight unit applies Section 5.5's normalisation: the unit its
    strategy builds from the method's options (experiments/methods.py)."""
    from dynamic_mtl.weighting import get_weighting
    from experiments.methods import parse_method

    spec = parse_method(method)
    if spec.weighting is None:
        return False
    unit = get_weighting(spec.weighting, num_tasks=2, **spec.options).make_weight_unit(2, **spec.unit_options)
    return unit is not None and unit.normalize_logits


def gradient_observations(runs: dict[str, pd.DataFrame], vanish: float = 1e-6) -> pd.DataFrame:
    """Per method: weight-unit gradient norm statistics and the a_i magnitudes (raw and as the softmax sees them)."""
    rows = []
    for method, s in runs.items():
        g = s["weight_grad_norm"]
        a = s[[f"a_{t}" for t in TASKS]].max(axis=1)
        seen = normalised_a(s).max(axis=1) if _normalizes_logits(method) else a
        rows.append({"method": method, "steps": len(s), "median_grad_norm": g.median(), "min_grad_norm": g.min(),
                     "final_grad_norm": g.iloc[-1], f"steps_grad_below_{vanish:g}": float((g < vanish).mean()),
                     "max_a_raw": a.max(), "max_a_softmax_input": seen.max()})
    return pd.DataFrame(rows).set_index("method")


def sweep_observations(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per task: the best w1, its accuracy, and the accuracy at equal weights (w1 = 0.5)."""
    rows = []
    for task, col in (("verification", "verification_accuracy"), ("expression", "expression_accuracy")):
        valid = sweep.dropna(subset=[col])
        if not len(valid):
            continue
        best = valid.loc[valid[col].idxmax()]
        equal = valid.loc[np.isclose(valid["w1"], 0.5), col]
        rows.append({"task": task, "best_w1": best["w1"], "best_accuracy": best[col],
                     "accuracy_at_w1_0.5": equal.iloc[0] if len(equal) else np.nan,
                     "best_is_equal_weights": bool(np.isclose(best["w1"], 0.5))})
    return pd.DataFrame(rows).set_index("task")


# ---------------------------------------------------------------------- plots
def _plt():
    """pyplot on the Agg backend (headless; notebooks display the saved PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_weights(runs: dict[str, pd.DataFrame], title: str = "") -> "matplotlib.figure.Figure":
    """Figure 4: w_1, w_2 per step, one panel per method (side by side)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.6), sharey=True, squeeze=False)
    for ax, (method, s) in zip(axes[0], runs.items()):
        for task in TASKS:
            ax.plot(s["step"], s[f"w_{task}"], color=TASK_COLOR[task], lw=1.2, label=f"w: {TASK_LABEL[task]}")
        ax.set_title(METHOD_LABEL.get(method, method))
        ax.set_xlabel("training step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("task weight")
    axes[0][0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_losses(runs: dict[str, pd.DataFrame], window: int = 1, title: str = "") -> "matplotlib.figure.Figure":
    """Figure 5: the task losses per step, one panel per method (raw faint, smoothed solid)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.6), sharey=True, squeeze=False)
    for ax, (method, s) in zip(axes[0], runs.items()):
        for task in TASKS:
            col = f"loss_{task}"
            if window > 1:
                ax.plot(s["step"], s[col], color=TASK_COLOR[task], lw=0.6, alpha=0.25)
            ax.plot(s["step"], smooth(s[col], window), color=TASK_COLOR[task], lw=1.4,
                    label=f"L: {TASK_LABEL[task]}")
        ax.set_title(METHOD_LABEL.get(method, method))
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("task loss" + (f" (rolling mean of {window})" if window > 1 else ""))
    axes[0][0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_efficiency(runs: dict[str, pd.DataFrame], window: int = 1, title: str = "") -> "matplotlib.figure.Figure":
    """Figure 6: each task's loss against steps (left) and wall time (right), methods overlaid."""
    plt = _plt()
    styles = {"dynamic": "-", "naive_dynamic": "--"}
    fig, axes = plt.subplots(len(TASKS), 2, figsize=(10.5, 3.2 * len(TASKS)), squeeze=False)
    for row, task in enumerate(TASKS):
        col = f"loss_{task}"
        for method, s in runs.items():
            for ax, x in zip(axes[row], ("step", "wall_time")):
                ax.plot(s[x], smooth(s[col], window), ls=styles.get(method, ":"), lw=1.4,
                        color=TASK_COLOR[task] if method == "dynamic" else "0.35",
                        label=METHOD_LABEL.get(method, method))
        axes[row][0].set_ylabel(f"loss: {TASK_LABEL[task].split(' (')[0]}")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
    axes[-1][0].set_xlabel("training step")
    axes[-1][1].set_xlabel("wall time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_gradient_normalisation(before: pd.DataFrame, after: pd.DataFrame, title: str = "") -> "matplotlib.figure.Figure":
    """Figure 7: (a) weight-unit gradient norm and (b) a_i without the normalisation; (c), (d) with it.

    Gradient panels share a log axis; exact zeros (a vanished gradient) are drawn at a floor a decade
    below the smallest non-zero norm, marked in the legend. (d) shows a_i as the softmax sees it
    (exp of the normalised batch-mean logits), with the raw exp(f_i) dashed.
    """
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 6.4), sharex="col")
    grads = pd.concat([before["weight_grad_norm"], after["weight_grad_norm"]])
    nonzero = grads[grads > 0]
    floor = float(nonzero.min()) / 10 if len(nonzero) else 1e-12
    panels = [(before, False, "before"), (after, True, "after")]
    for row, (s, normalised, when) in enumerate(panels):
        ax = axes[row][0]
        g = s["weight_grad_norm"]
        ax.plot(s["step"], g.clip(lower=floor), color="k", lw=1.0, label="||grad psi||")
        zeros = g <= 0
        if zeros.any():
            ax.plot(s["step"][zeros], np.full(int(zeros.sum()), floor), "v", color="tab:orange", ms=3,
                    label=f"exactly 0 ({100 * zeros.mean():.0f}% of steps), drawn at {floor:.1g}")
            ax.legend(fontsize=7, loc="best")
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, max(float(grads.max()), floor * 10) * 2)
        ax.set_ylabel("||grad psi||")
        ax.set_title(f"({'ac'[row]}) gradient {when} normalisation", fontsize=10)
        ax = axes[row][1]
        shown = normalised_a(s) if normalised else s
        for task in TASKS:
            name = TASK_LABEL[task].split(" (")[0]
            ax.plot(s["step"], shown[f"a_{task}"], color=TASK_COLOR[task], lw=1.2, label=f"a: {name}")
            if normalised:
                ax.plot(s["step"], s[f"a_{task}"], color=TASK_COLOR[task], lw=0.8, ls="--", alpha=0.6,
                        label=f"raw exp(f): {name}")
        values = pd.concat([s[f"a_{t}"] for t in TASKS] + [shown[f"a_{t}"] for t in TASKS])
        if (values > 0).all() and values.max() / values.min() > 50:
            ax.set_yscale("log")
        ax.set_ylabel("a_i = exp(f_i)")
        ax.legend(fontsize=7, loc="best")
        ax.set_title(f"({'bd'[row]}) a_i {when} normalisation", fontsize=10)
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_static_sweep(sweeps: dict[str, pd.DataFrame], title: str = "") -> "matplotlib.figure.Figure":
    """Figure 2: verification (FV, blue) and expression (EX, red) accuracy against w1, one panel per dataset."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(max(6.5, 5.2 * len(sweeps)), 3.8), squeeze=False)
    for ax, (name, sweep) in zip(axes[0], sweeps.items()):
        for col, std, color, label in (("verification_accuracy", "verification_std", "tab:blue", "FV"),
                                       ("expression_accuracy", "expression_std", "tab:red", "EX")):
            ax.errorbar(sweep["w1"], sweep[col], yerr=sweep[std], color=color, marker="o", ms=4, lw=1.3,
                        capsize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("w1 (face verification weight; w2 = 1 - w1)")
        ax.set_xticks(np.round(np.arange(0, 1.01, 0.1), 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel("accuracy (%), mean ± std over folds")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig, run_dir: str | Path, name: str, pdf: bool = True) -> list[Path]:
    """Writes ``<run_dir>/figures/<name>.png`` (and ``.pdf``); returns the paths."""
    out = Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png"] + ([out / f"{name}.pdf"] if pdf else [])
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    _plt().close(fig)
    return paths


def describe_run(run_dir: str | Path) -> str:
    """One line naming the run, its data and its profile (for titles and printouts)."""
    run_dir = Path(run_dir)
    c = load_config(run_dir)
    data = ("synthfaces (synthetic, not CK+/Oulu-CASIA)" if c.get("dataset") == "synthfaces"
            else c.get("dataset", "?"))
    return (f"run {run_dir.parent.name}/{run_dir.name} · profile {c.get('name')} · data {data} · "
            f"{c.get('backbone')} {c.get('image_size')} px, {c.get('epochs')} epochs")
