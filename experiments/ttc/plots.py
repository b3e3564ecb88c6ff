"""Figures of the TTC experiments (matplotlib, Agg), shared by the runner and notebooks/ttc_alphas.ipynb.

* :func:`plot_alpha_matrices` -- the learned alpha matrix of every layer (paper Figures 4-5 material).
* :func:`plot_alpha_history` -- influence of the other tasks on one task during training (Figure 4):
  ``shares=True`` (the paper-comparable figure) plots each sender's share
  ``alpha[i, j] / sum_k alpha[i, k]`` (:func:`dynamic_mtl.ttc.shares.influence_shares`), self included;
  ``shares=False`` the raw alphas.
* :func:`plot_alpha_by_layer` -- the same per layer (Figure 5), shares or raw alphas.
* :func:`plot_incremental_curve` -- error vs steps, incremental vs alone (Figure 6).
* :func:`plot_alpha_vs_groundtruth` -- learned alpha vs ground-truth label correlation (synthattrs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def save(fig, path: str | Path, pdf: bool = False) -> Path:
    """Saves ``fig`` as PNG (and PDF beside it) and closes it; returns the PNG path."""
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    if pdf:
        fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    return path


def plot_alpha_matrices(alphas: np.ndarray, task_names: Sequence[str], title: str = "TTC alpha per layer"):
    """Heatmaps of ``alphas[l, i, j]`` (row i receives from column j), one panel per layer."""
    layers = alphas.shape[0]
    cols = min(3, layers)
    rows = int(np.ceil(layers / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.9 * rows), squeeze=False)
    off = alphas[:, ~np.eye(alphas.shape[1], dtype=bool)]
    vmin, vmax = float(off.min()), float(off.max())
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.05, vmax + 0.05
    for l in range(rows * cols):
        ax = axes[l // cols][l % cols]
        if l >= layers:
            ax.axis("off")
            continue
        shown = alphas[l].astype(float).copy()
        np.fill_diagonal(shown, np.nan)  # alpha_ii = 1 by construction
        im = ax.imshow(shown, vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_title(f"after layer {l + 1} (feeds layer {l + 2})", fontsize=9)
        ax.set_xticks(range(len(task_names)), task_names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(task_names)), task_names, fontsize=7)
        for i in range(shown.shape[0]):
            for j in range(shown.shape[1]):
                if i != j:
                    ax.text(j, i, f"{alphas[l, i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="alpha_ij (row i receives from j)")
    fig.suptitle(title)
    return fig


def _plot_focus_row(
    x,
    values: np.ndarray,
    task_names: Sequence[str],
    focus: str,
    title: str,
    xlabel: str,
    include_self: bool = False,
    ylabel: str | None = None,
):
    """One line per (other) task j: ``values[:, focus, j]`` against ``x`` (Figures 4 and 5)."""
    i = list(task_names).index(focus)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for j, name in enumerate(task_names):
        if j != i or include_self:
            ax.plot(
                x,
                values[:, i, j],
                marker="o",
                ms=3,
                label=name + (" (self)" if j == i else ""),
                ls="--" if j == i else "-",
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or f"alpha[{focus}, j]")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return fig, ax


def _values(alphas: np.ndarray, shares: bool) -> tuple[np.ndarray, str]:
    from dynamic_mtl.ttc.shares import influence_shares

    return (influence_shares(alphas), "share of {focus}'s input") if shares else (alphas, "alpha[{focus}, j]")


def plot_alpha_history(
    steps, history: np.ndarray, task_names: Sequence[str], focus: str, layer: int, shares: bool = True
):
    """Figure 4: influence of every task j on ``focus`` in layer ``layer`` (0-based) vs training step:
    its share ``alpha[focus, j] / sum_k alpha[focus, k]`` (self included), or with ``shares=False`` the raw
    ``alpha[focus, j]`` of the other tasks."""
    values, ylabel = _values(history[:, layer], shares)
    what = "Relative influence of the tasks" if shares else "Influence (raw alpha) of other tasks"
    fig, _ = _plot_focus_row(
        steps,
        values,
        task_names,
        focus,
        f"{what} on {focus}, TTC after layer {layer + 1}",
        "training step (all tasks, in turns)",
        include_self=shares,
        ylabel=ylabel.format(focus=focus),
    )
    return fig


def plot_alpha_by_layer(alphas: np.ndarray, task_names: Sequence[str], focus: str, shares: bool = True):
    """Figure 5: the influence of every task on ``focus`` per layer (shares, or raw alphas of the others)."""
    layers = np.arange(1, alphas.shape[0] + 1)
    values, ylabel = _values(alphas, shares)
    fig, ax = _plot_focus_row(
        layers,
        values,
        task_names,
        focus,
        f"Sharing degree of the tasks on {focus} by layer",
        "TTC (from layer -> to layer)",
        include_self=shares,
        ylabel=ylabel.format(focus=focus),
    )
    ax.set_xticks(layers, [f"{l}->{l + 1}" for l in layers])
    return fig


def plot_incremental_curve(curve: pd.DataFrame, threshold: float, task: str):
    """Figure 6: validation error (1 - mean class accuracy) vs steps; columns step, incremental, alone."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(curve["step"], curve["alone"], marker="o", ms=3, label=f"{task} trained alone (ST)")
    ax.plot(curve["step"], curve["incremental"], marker="o", ms=3, label=f"{task} added incrementally (DMT)")
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"error {threshold}")
    ax.set_xlabel("training step of the new task")
    ax.set_ylabel("validation error")
    ax.set_title("Task-wise incremental transfer learning")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_alpha_vs_groundtruth(alphas: np.ndarray, phi: np.ndarray, task_names: Sequence[str]):
    """Scatter of the symmetrised alpha of each task pair (last layer and layer mean) vs |phi|."""
    T = len(task_names)
    iu = np.triu_indices(T, 1)
    rel = np.abs(np.asarray(phi))[iu]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    for ax, (label, a) in zip(axes, (("last TTC", alphas[-1]), ("mean over TTCs", alphas.mean(0)))):
        sym = ((a + a.T) / 2)[iu]
        ax.scatter(rel, sym, s=18)
        for k, (i, j) in enumerate(zip(*iu)):
            if rel[k] >= 0.2:
                ax.annotate(f"{task_names[i]}/{task_names[j]}", (rel[k], sym[k]), fontsize=6)
        ax.set_xlabel("|phi| of the labels (ground truth)")
        ax.set_ylabel("(alpha_ij + alpha_ji) / 2")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle("Do the learned alphas find the related tasks?")
    return fig
