"""Finding and loading the run directories the figures read (never trains).

A run directory is ``results/<dataset>/<run-id>`` (written by ``dynamic-mtl run``, see docs/outputs.md).
When no suitable run exists, :func:`resolve_run` says which command makes one; only the figures
command line (``experiments.face_expression.figure_notebooks --train-missing``) may decide to run it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_prep import datasets

#: what each kind of run must hold, the config that produces it, and the command that does
KINDS = {
    "table2": {
        "methods": ("naive_dynamic", "dynamic"),
        "file": None,
        "config": "quick",
        "command": "make reproduce-table2",
    },
    "figure2": {"methods": (), "file": "figure2.csv", "config": "figure2", "command": "make reproduce-figure2"},
    "figure7": {
        "methods": ("dynamic_published", "dynamic"),
        "file": None,
        "config": "figure7",
        "command": "make reproduce-figure7",
    },
}


def _check_kind(kind: str) -> dict:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return KINDS[kind]


def run_kinds(run_dir: str | Path) -> list[str]:
    """The kinds of :data:`KINDS` a finished run directory can draw (needs per_fold.csv)."""
    run_dir = Path(run_dir)
    if not (run_dir / "per_fold.csv").is_file():
        return []
    logged = {p.stem.rsplit("_fold", 1)[0] for p in (run_dir / "steps").glob("*_fold*.csv")}
    return [
        kind
        for kind, need in KINDS.items()
        if set(need["methods"]) <= logged and (need["file"] is None or (run_dir / need["file"]).is_file())
    ]


def find_run(kind: str, results_dir: str | Path = "results", dataset: str = "synthfaces") -> Path | None:
    """The most recently finished run of ``kind`` under ``results_dir/dataset``, or None."""
    _check_kind(kind)
    base = Path(results_dir) / dataset
    runs = [d for d in base.glob("*") if d.is_dir() and kind in run_kinds(d)] if base.is_dir() else []
    return max(runs, key=lambda d: (d / "per_fold.csv").stat().st_mtime) if runs else None


def resolve_run(
    run_dir: str | Path | None, kind: str, results_dir: str | Path = "results", dataset: str = "synthfaces"
) -> Path:
    """``run_dir`` if it is a finished run of ``kind``, else the latest one under ``results_dir/dataset``.

    Raises ``FileNotFoundError`` naming the command that makes such a run when there is none.
    """
    need = _check_kind(kind)
    if run_dir:
        run_dir = Path(run_dir)
        if kind not in run_kinds(run_dir):
            raise FileNotFoundError(
                f"{run_dir} is not a finished {kind} run (needs per_fold.csv, steps of "
                f"{list(need['methods'])}{' and ' + need['file'] if need['file'] else ''})"
            )
        return run_dir
    found = find_run(kind, results_dir, dataset)
    if found is None:
        raise FileNotFoundError(
            f"no finished {kind} run under {Path(results_dir) / dataset}: run "
            f"`{need['command']} DATASET={dataset}` first, or `make figures TRAIN_MISSING=1`"
        )
    return found


def train_missing_run(
    kind: str,
    results_dir: str | Path = "results",
    dataset: str = "synthfaces",
    data_dir: str | None = None,
    progress: bool = True,
) -> Path:
    """Runs the profile of ``kind`` (quick, figure2 or figure7) on ``dataset`` and returns its directory."""
    from experiments.face_expression.config import ExperimentConfig
    from experiments.face_expression.run import run_experiment

    config = ExperimentConfig.load(_check_kind(kind)["config"]).override(
        results_dir=str(results_dir), dataset=dataset, data_dir=data_dir
    )
    print(f"no finished {kind} run under {Path(results_dir) / dataset}: running the {config.name} profile", flush=True)
    return run_experiment(config, progress=progress)


def load_config(run_dir: str | Path) -> dict:
    """The run's resolved ``config.yaml`` as a dict."""
    import yaml

    return yaml.safe_load((Path(run_dir) / "config.yaml").read_text())


def logged_folds(run_dir: str | Path, method: str) -> list[int]:
    """The folds with a step log of ``method``, ascending."""
    steps = Path(run_dir) / "steps"
    return sorted(int(p.stem.rsplit("_fold", 1)[1]) for p in steps.glob(f"{method}_fold*.csv"))


def load_steps(run_dir: str | Path, method: str, fold: int | None = None) -> pd.DataFrame:
    """Per-step log of one method on one fold (``fold=None``: the lowest logged fold)."""
    steps = Path(run_dir) / "steps"
    if fold is None:
        folds = logged_folds(run_dir, method)
        if not folds:
            raise FileNotFoundError(f"no step log for {method!r} in {steps}")
        fold = folds[0]
    path = steps / f"{method}_fold{fold}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return pd.read_csv(path)


def load_steps_folds(run_dir: str | Path, method: str, fold: int | None = None) -> list[pd.DataFrame]:
    """Step logs of ``method``: every logged fold (``fold=None``), or ``[that fold]``."""
    folds = logged_folds(run_dir, method) if fold is None else [fold]
    if not folds:
        raise FileNotFoundError(f"no step log for {method!r} in {Path(run_dir) / 'steps'}")
    return [load_steps(run_dir, method, k) for k in folds]


def load_figure2(run_dir: str | Path) -> pd.DataFrame:
    """The static-weight sweep (percentages), sorted by w1."""
    return pd.read_csv(Path(run_dir) / "figure2.csv").sort_values("w1").reset_index(drop=True)


def describe_run(run_dir: str | Path) -> str:
    """One line naming the run, its data and its profile (for titles and printouts)."""
    run_dir = Path(run_dir)
    c = load_config(run_dir)
    spec = datasets.DATASETS.get(c.get("dataset"))
    data = f"{spec.name} (synthetic, not CK+/Oulu-CASIA)" if spec and spec.synthetic else c.get("dataset", "?")
    return (
        f"run {run_dir.parent.name}/{run_dir.name} · profile {c.get('name')} · data {data} · "
        f"{c.get('backbone')} {c.get('image_size')} px, {c.get('epochs')} epochs"
    )
