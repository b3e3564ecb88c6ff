"""Figures 2 and 4-7 of Ming et al. 2019 drawn with matplotlib (headless) from a run's step logs.

Figures 4-6 take, per method, one step log or a list of them (one per fold): with several folds
they draw the median over folds and shade the interquartile band. The paper numbers its tasks the
other way round from our column names: in Figures 4-5 "Task 1" is facial expression and "Task 2"
face verification (our ``identity``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.face_expression.figures.observations import _frames, fold_summary, normalised_a, smooth, tasks_of

TASK_LABEL = {"identity": "face verification (paper: Task 2)", "expression": "expression (paper: Task 1)"}
TASK_COLOR = {"identity": "tab:blue", "expression": "tab:red"}  # the paper's FV blue, EX red
METHOD_LABEL = {
    "naive_dynamic": "naive dynamic",
    "dynamic": "proposed dynamic",
    "dynamic_published": "proposed, published code (no normalisation)",
}
_OTHER_COLORS = ("tab:green", "tab:purple", "tab:orange", "tab:brown")


def task_label(task: str) -> str:
    return TASK_LABEL.get(task, task)


def task_color(task: str, index: int = 0) -> str:
    return TASK_COLOR.get(task, _OTHER_COLORS[index % len(_OTHER_COLORS)])


def pyplot():
    """pyplot on the Agg backend (headless; notebooks display the saved PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw(ax, value, column: str, x: str = "step", window: int = 1, band: bool = True, **style):
    """The median curve of ``column`` over the folds in ``value`` (smoothed by ``window``), with the
    interquartile band shaded when there are several folds."""
    median, low, high = fold_summary(value)
    ax.plot(median[x], smooth(median[column], window), **style)
    if band and len(_frames(value)) > 1:
        ax.fill_between(
            median[x],
            smooth(low[column], window),
            smooth(high[column], window),
            color=style.get("color"),
            alpha=0.18,
            lw=0,
        )


def _fold_note(runs: dict) -> str:
    counts = {len(_frames(v)) for v in runs.values()}
    n = max(counts)
    return f"median over {n} folds, interquartile band" if n > 1 else ""


def _finish(fig, axes, title: str, note: str):
    if title or note:
        fig.suptitle(" · ".join(t for t in (title, note) if t), fontsize=10)
    fig.tight_layout()
    return fig


def plot_weights(runs: dict, title: str = ""):
    """Figure 4: each task's weight w_i per step, one panel per method (side by side)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.6), sharey=True, squeeze=False)
    for ax, (method, value) in zip(axes[0], runs.items()):
        for i, task in enumerate(tasks_of(_frames(value)[0])):
            _draw(ax, value, f"w_{task}", color=task_color(task, i), lw=1.2, label=f"w: {task_label(task)}")
        ax.set_title(METHOD_LABEL.get(method, method))
        ax.set_xlabel("training step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("task weight")
    axes[0][0].legend(fontsize=8, loc="best")
    return _finish(fig, axes, title, _fold_note(runs))


def plot_losses(runs: dict, window: int = 1, title: str = ""):
    """Figure 5: the task losses per step, one panel per method (smoothed by ``window``)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.6), sharey=True, squeeze=False)
    for ax, (method, value) in zip(axes[0], runs.items()):
        for i, task in enumerate(tasks_of(_frames(value)[0])):
            color = task_color(task, i)
            if window > 1:
                _draw(ax, value, f"loss_{task}", band=False, color=color, lw=0.6, alpha=0.25)
            _draw(ax, value, f"loss_{task}", window=window, color=color, lw=1.4, label=f"L: {task_label(task)}")
        ax.set_title(METHOD_LABEL.get(method, method))
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("task loss" + (f" (rolling mean of {window})" if window > 1 else ""))
    axes[0][0].legend(fontsize=8, loc="best")
    return _finish(fig, axes, title, _fold_note(runs))


def plot_efficiency(runs: dict, window: int = 1, title: str = ""):
    """Figure 6: each task's loss against steps (left) and wall time (right), methods overlaid."""
    plt = pyplot()
    styles = {"dynamic": "-", "naive_dynamic": "--"}
    tasks = tasks_of(_frames(next(iter(runs.values())))[0])
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10.5, 3.2 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        for method, value in runs.items():
            for ax, x in zip(axes[row], ("step", "wall_time")):
                _draw(
                    ax,
                    value,
                    f"loss_{task}",
                    x=x,
                    window=window,
                    ls=styles.get(method, ":"),
                    lw=1.4,
                    color=task_color(task, row) if method == "dynamic" else "0.35",
                    label=METHOD_LABEL.get(method, method),
                )
        axes[row][0].set_ylabel(f"loss: {task_label(task).split(' (')[0]}")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
    axes[-1][0].set_xlabel("training step")
    axes[-1][1].set_xlabel("wall time (s)")
    return _finish(fig, axes, title, _fold_note(runs))


def plot_gradient_normalisation(before: pd.DataFrame, after: pd.DataFrame, title: str = ""):
    """Figure 7: (a) weight-unit gradient norm and (b) a_i without the normalisation; (c), (d) with it.

    Gradient panels share a log axis; exact zeros (a vanished gradient) are drawn at a floor a decade
    below the smallest non-zero norm, marked in the legend. (d) shows a_i as the softmax sees it
    (exp of the normalised batch-mean logits), with the raw exp(f_i) dashed.
    """
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 6.4), sharex="col")
    grads = pd.concat([before["weight_grad_norm"], after["weight_grad_norm"]])
    nonzero = grads[grads > 0]
    floor = float(nonzero.min()) / 10 if len(nonzero) else 1e-12
    for row, (s, normalised, when) in enumerate([(before, False, "before"), (after, True, "after")]):
        ax = axes[row][0]
        g = s["weight_grad_norm"]
        ax.plot(s["step"], g.clip(lower=floor), color="k", lw=1.0, label="||grad psi||")
        zeros = g <= 0
        if zeros.any():
            ax.plot(
                s["step"][zeros],
                np.full(int(zeros.sum()), floor),
                "v",
                color="tab:orange",
                ms=3,
                label=f"exactly 0 ({100 * zeros.mean():.0f}% of steps), drawn at {floor:.1g}",
            )
            ax.legend(fontsize=7, loc="best")
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, max(float(grads.max()), floor * 10) * 2)
        ax.set_ylabel("||grad psi||")
        ax.set_title(f"({'ac'[row]}) gradient {when} normalisation", fontsize=10)
        ax = axes[row][1]
        shown = normalised_a(s) if normalised else s
        tasks = tasks_of(s)
        for i, task in enumerate(tasks):
            name = task_label(task).split(" (")[0]
            ax.plot(s["step"], shown[f"a_{task}"], color=task_color(task, i), lw=1.2, label=f"a: {name}")
            if normalised:
                ax.plot(
                    s["step"],
                    s[f"a_{task}"],
                    color=task_color(task, i),
                    lw=0.8,
                    ls="--",
                    alpha=0.6,
                    label=f"raw exp(f): {name}",
                )
        values = pd.concat([s[f"a_{t}"] for t in tasks] + [shown[f"a_{t}"] for t in tasks])
        if (values > 0).all() and values.max() / values.min() > 50:
            ax.set_yscale("log")
        ax.set_ylabel("a_i = exp(f_i)")
        ax.legend(fontsize=7, loc="best")
        ax.set_title(f"({'bd'[row]}) a_i {when} normalisation", fontsize=10)
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    return _finish(fig, axes, title, "")


def plot_static_sweep(sweeps: dict[str, pd.DataFrame], title: str = ""):
    """Figure 2: verification (FV, blue) and expression (EX, red) accuracy against w1, one panel per dataset."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(max(6.5, 5.2 * len(sweeps)), 3.8), squeeze=False)
    for ax, (name, sweep) in zip(axes[0], sweeps.items()):
        for col, std, color, label in (
            ("verification_accuracy", "verification_std", "tab:blue", "FV"),
            ("expression_accuracy", "expression_std", "tab:red", "EX"),
        ):
            ax.errorbar(
                sweep["w1"], sweep[col], yerr=sweep[std], color=color, marker="o", ms=4, lw=1.3, capsize=3, label=label
            )
        ax.set_title(name)
        ax.set_xlabel("w1 (face verification weight; w2 = 1 - w1)")
        ax.set_xticks(np.round(np.arange(0, 1.01, 0.1), 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel("accuracy (%), mean ± std over folds")
    return _finish(fig, axes, title, "")


def save_figure(fig, run_dir: str | Path, name: str, pdf: bool = True) -> list[Path]:
    """Writes ``<run_dir>/figures/<name>.png`` (and ``.pdf``); returns the paths."""
    out = Path(run_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png"] + ([out / f"{name}.pdf"] if pdf else [])
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    pyplot().close(fig)
    return paths
