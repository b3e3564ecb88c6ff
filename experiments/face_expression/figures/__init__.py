"""Figures 2 and 4-7 of Ming et al. 2019 from a run directory (used by notebooks/figure*.ipynb).

* :mod:`~experiments.face_expression.figures.runs`: find and load finished runs (never trains);
* :mod:`~experiments.face_expression.figures.observations`: the numbers printed beside each figure;
* :mod:`~experiments.face_expression.figures.plots`: the matplotlib figures.
"""

from __future__ import annotations

from experiments.face_expression.figures.observations import (
    efficiency_observations,
    fold_summary,
    gradient_observations,
    loss_observations,
    normalised_a,
    normalizes_logits,
    pooled,
    smooth,
    sweep_observations,
    tasks_of,
    weight_observations,
)
from experiments.face_expression.figures.plots import (
    METHOD_LABEL,
    TASK_COLOR,
    TASK_LABEL,
    plot_efficiency,
    plot_gradient_normalisation,
    plot_losses,
    plot_static_sweep,
    plot_weights,
    save_figure,
    task_label,
)
from experiments.face_expression.figures.runs import (
    KINDS,
    describe_run,
    find_run,
    load_config,
    load_figure2,
    load_steps,
    load_steps_folds,
    logged_folds,
    resolve_run,
    run_kinds,
    train_missing_run,
)

__all__ = [
    "KINDS",
    "run_kinds",
    "find_run",
    "resolve_run",
    "train_missing_run",
    "load_config",
    "load_steps",
    "load_steps_folds",
    "logged_folds",
    "load_figure2",
    "describe_run",
    "tasks_of",
    "pooled",
    "fold_summary",
    "smooth",
    "normalised_a",
    "normalizes_logits",
    "weight_observations",
    "loss_observations",
    "efficiency_observations",
    "gradient_observations",
    "sweep_observations",
    "TASK_LABEL",
    "TASK_COLOR",
    "METHOD_LABEL",
    "task_label",
    "plot_weights",
    "plot_losses",
    "plot_efficiency",
    "plot_gradient_normalisation",
    "plot_static_sweep",
    "save_figure",
]
