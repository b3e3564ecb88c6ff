"""``dynamic-mtl study``: one config over several seeds, and a claim-by-claim verdict.

Each seed is an ordinary run (``results/<dataset>/<study-id>/seed<s>``, resumable with
``--resume``). The study then gathers the units (one unit = one fold of one seed), computes
the per-step statistics of each step log (experiments/face_expression/claims.py), and writes into the study
directory:

* ``units.csv``: one row per (method, seed, fold): the per-fold results and step statistics;
* ``rows.csv``: per method, the mean and 95 % CI over units of every metric;
* ``claims.csv`` and ``reproduction.md``: one row per claim of the paper with its verdict;
* ``sensitivity.csv``: the proposed method's variants against it (paired);
* ``other_weightings.csv``: every other weighting method the study ran against the proposed one (paired);
* ``learning_curves.csv`` / ``.png`` and ``convergence.csv``: validation accuracy per epoch, and
  whether each row has plateaued at the end of its epochs (:func:`convergence`).

``--publish PATH`` also copies ``reproduction.md`` there (``make reproduce-study`` writes
docs/reproduction.md this way; it is never written by hand).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pandas as pd

from data_prep import datasets
from experiments import markdown
from experiments import statistics as st
from experiments.face_expression.claims import (
    NOT_MEASURED,
    STEP_STATISTICS,
    evaluate_claims,
    evaluate_other_weightings,
    evaluate_sensitivity,
    step_statistics,
)
from experiments.face_expression.config import ExperimentConfig, methods_override
from experiments.face_expression.histories import read_histories
from experiments.processes import log_tail, run_side_by_side, threads_per_job  # noqa: F401 (threads_per_job: also used from here)
from experiments.rundir import run_directory

#: per-fold metrics summarised per method in rows.csv and reproduction.md
ROW_METRICS = {
    "verification_accuracy": "Verification accuracy (%)",
    "expression_accuracy": "Expression accuracy (%)",
    "verification_accuracy_crossfold": "Verification, cross-fold thresholds (%)",
}


def seed_run_dir(config: ExperimentConfig, study_id: str, seed: int) -> Path:
    return run_directory(config.results_dir, config.dataset, study_id) / f"seed{seed}"


def seed_config(config: ExperimentConfig, study_id: str, seeds: list[int], seed: int) -> ExperimentConfig:
    """The run of one seed: ``methods`` on every seed, plus ``single_seed_methods`` on the first."""
    methods = list(config.methods) + (list(config.single_seed_methods) if seed == seeds[0] else [])
    return config.override(seed=seed, run_id=f"{study_id}/seed{seed}", methods=list(dict.fromkeys(methods)))


def gather_units(run_dirs: dict[int, Path]) -> pd.DataFrame:
    """Every (method, seed, fold) of the seeds' finished runs, with the step-log statistics."""
    frames = []
    for seed, run_dir in run_dirs.items():
        per_fold = pd.read_csv(run_dir / "per_fold.csv").assign(seed=seed)
        stats = []
        for row in per_fold[["method", "fold"]].itertuples(index=False):
            path = run_dir / "steps" / f"{row.method}_fold{row.fold}.csv"
            values = (
                step_statistics(pd.read_csv(path)) if path.is_file() else {k: float("nan") for k in STEP_STATISTICS}
            )
            stats.append(values)
        frames.append(pd.concat([per_fold.reset_index(drop=True), pd.DataFrame(stats)], axis=1))
    return pd.concat(frames, ignore_index=True)


#: validation metrics of the per-epoch histories (``per_fold/<method>_fold<k>_history.csv``)
CURVE_METRICS = {
    "val_verification_accuracy": "validation verification accuracy (%)",
    "val_expression_accuracy": "validation expression accuracy (%)",
}
#: a row has plateaued when the upper 95 % bound of its end-of-training gain is below this (points)
PLATEAU_POINTS = 1.0


def gather_curves(run_dirs: dict[int, Path]) -> pd.DataFrame:
    """Every (method, seed, fold, epoch) row of the seeds' training histories."""
    frames = [
        history.assign(method=method, fold=fold, seed=seed)
        for seed, run_dir in run_dirs.items()
        for method, fold, history in read_histories(run_dir)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plateau_window(epochs: int) -> int:
    """Epochs averaged on each side of the end-of-training gain: an eighth of the epochs, at least 2
    (12 epochs: 2; 22 or 24 epochs: 3; 32 epochs: 4)."""
    return max(2, -(-epochs // 8))


def convergence(curves: pd.DataFrame, reports: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """Per method and reported validation metric: the end-of-training gain, i.e. the mean accuracy of
    the last ``h`` epochs minus the mean of the ``h`` epochs before them (``h =``
    :func:`plateau_window`), mean and 95 % CI over units, in points. Averaging ``h`` epochs on each
    side keeps one noisy validation epoch from deciding the verdict, which a last-minus-earlier-epoch
    difference would let it do."""
    rows = []
    if not len(curves):
        return pd.DataFrame(rows)
    for method, part in curves.groupby("method", sort=False):
        epochs = int(part["epoch"].max()) + 1
        h = plateau_window(epochs)
        if epochs < 2 * h:
            continue
        late, early = list(range(epochs - h, epochs)), list(range(epochs - 2 * h, epochs - h))
        for metric in CURVE_METRICS:
            task = metric.split("_")[1]
            if metric not in part or task not in reports.get(method, (task,)):
                continue
            wide = part.pivot_table(index=["seed", "fold"], columns="epoch", values=metric)
            if any(e not in wide for e in early + late):
                continue
            interval = st.mean_ci((wide[late].mean(axis=1) - wide[early].mean(axis=1)) * 100)
            rows.append(
                {
                    "method": method,
                    "metric": metric,
                    "from_epoch": early[0] + 1,
                    "to_epoch": late[-1] + 1,
                    "gain": st.format_interval(interval, signed=True),
                    "plateaued": bool(interval.high < PLATEAU_POINTS) if interval.n > 1 else False,
                }
            )
    return pd.DataFrame(rows)


def plot_curves(curves: pd.DataFrame, path: Path, reports: dict[str, tuple[str, ...]] | None = None) -> None:
    """Mean validation accuracy per epoch and method (one panel per metric), as PNG; with ``reports``
    (method -> tasks it reports) a method is drawn only in the panels of its tasks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one colour and line style per method, the same in every panel (a study has more methods than the
    # default colour cycle has colours)
    methods = list(dict.fromkeys(curves["method"])) if len(curves) else []
    colours, dashes = plt.get_cmap("tab20").colors, ("-", "--", ":")
    style = {m: {"color": colours[i % 20], "linestyle": dashes[i // 20 % 3]} for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(6 * len(CURVE_METRICS), 4.2))
    for ax, (metric, title) in zip(axes, CURVE_METRICS.items()):
        if metric in curves:
            mean = curves.groupby(["method", "epoch"], sort=False)[metric].mean().unstack("method") * 100
            task = metric.split("_")[1]
            for method in mean.columns:
                if mean[method].notna().any() and task in (reports or {}).get(method, (task,)):
                    ax.plot(mean.index + 1, mean[method], marker=".", label=method, **style[method])
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes:  # one legend for every panel: a single-task row is drawn in one panel only
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.tight_layout(rect=(0, 0, 0.84, 1))
    fig.legend(handles.values(), handles.keys(), loc="center right", fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def method_rows(units: pd.DataFrame) -> pd.DataFrame:
    """Per method (in run order) and metric of a task the method reports: mean and 95 % CI over
    units, in percent (a single-task row has no number for the task it does not train)."""
    from experiments.face_expression.methods import parse_method

    rows = []
    for method in dict.fromkeys(units["method"]):
        part = units[units["method"] == method]
        label = part["label"].iloc[0] if "label" in part else method
        row = {"method": method, "label": f"{label} (`{method}`)"}
        reports = parse_method(method).reports
        for metric in ROW_METRICS:
            if metric in part and metric.split("_")[0] in reports:
                interval = st.mean_ci(part[metric].astype(float) * 100)
                row.update(
                    {
                        f"{metric}_mean": interval.mean,
                        f"{metric}_ci_low": interval.low,
                        f"{metric}_ci_high": interval.high,
                        f"{metric}_units": interval.n,
                    }
                )
        rows.append(row)
    return pd.DataFrame(rows)


#: the Markdown columns of the study's tables (experiments/markdown.py)
CLAIM_COLUMNS = (
    markdown.Column("Claim (paper)", "quote", "text"),
    markdown.Column("Where", "source", "text"),
    markdown.Column("Measurement", "measurement", "text"),
    markdown.Column("Statistic", "statistic", lambda v: str(v or "-")),
    markdown.Column("Verdict", "verdict", "**{}**"),
)


def paired_effect_columns(first: str) -> tuple[markdown.Column, ...]:
    """The columns of a :func:`experiments.face_expression.claims.paired_effects` table; ``first`` heads the
    description column."""
    return (
        markdown.Column(first, "change", "text"),
        markdown.Column("Metric", "metric", "text"),
        markdown.Column("Difference", "statistic", "text"),
        markdown.Column("Effect", "effect", "text"),
    )


SENSITIVITY_COLUMNS = paired_effect_columns("Variant")
OTHER_WEIGHTING_COLUMNS = paired_effect_columns("Method")
CONVERGENCE_COLUMNS = (
    markdown.Column("Method", "method", "text"),
    markdown.Column("Metric", "metric", "text"),
    markdown.Column("Epochs", "epochs", "text"),
    markdown.Column("Gain", "gain", "text"),
    markdown.Column("Plateaued", "plateaued", lambda v: "yes" if v else "no"),
)


def _cell(row: pd.Series, metric: str) -> str:
    mean = row.get(f"{metric}_mean", float("nan"))
    if pd.isna(mean):
        return "-"
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]" if pd.notna(low) else f"{mean:.2f}"


def reproduction_markdown(
    config: ExperimentConfig,
    seeds: list[int],
    units: pd.DataFrame,
    rows: pd.DataFrame,
    claims: pd.DataFrame,
    command: str,
    machine: str,
    seconds: float,
    sensitivity: pd.DataFrame | None = None,
    converged: pd.DataFrame | None = None,
    run_dirs: dict[int, Path] | None = None,
    other_weightings: pd.DataFrame | None = None,
) -> str:
    data = (
        f"the embedded {config.dataset} dataset (synthetic, not CK+ or Oulu-CASIA)"
        if datasets.get(config.dataset).synthetic
        else f"{config.dataset}"
    )
    folds = sorted(units["fold"].unique())
    measured, unmeasured = claims[claims["verdict"] != NOT_MEASURED], claims[claims["verdict"] == NOT_MEASURED]
    lines = [
        "# Reproduction of Ming et al. 2019: claim-by-claim verdicts",
        "",
        "Written by `dynamic-mtl study` from the run's files; do not edit by hand.",
        "",
        f"* Command: `{command}`",
        f"* Data: {data}. Profile `{config.name}`: {config.backbone} at {config.image_size} px, "
        f"{config.epochs} epochs, batch {config.batch_size}.",
        f"* Units: {len(folds)} folds x {len(seeds)} seeds (seeds {', '.join(map(str, seeds))}); in each unit every "
        "method starts from the same initial network and sees the same batches (paired design).",
        *(
            [
                f"* Run with the first seed only (all folds), to fit the budget: "
                f"{', '.join(f'`{m}`' for m in config.single_seed_methods)}."
            ]
            if config.single_seed_methods
            else []
        ),
        *(
            [
                f"* Run on folds {', '.join(map(str, config.reduced_folds))} only (every seed), to fit the "
                f"budget: {', '.join(f'`{m}`' for m in config.reduced_methods)}; their comparisons are "
                "paired over those units."
            ]
            if config.reduced_methods
            else []
        ),
        f"* Machine: {machine}. Wall time of the seed runs: {_wall_times(run_dirs)}; of this invocation: "
        f"{seconds / 60:.1f} min.",
        "",
        "A difference is *reproduced* when its 95 % confidence interval over units excludes 0 on the "
        "paper's side, *not reproduced* when it excludes 0 on the other side, *inconclusive* otherwise. "
        "Statistic: mean paired difference [95 % t-interval], Wilcoxon signed-rank p, number of units.",
        "",
        "## Claims",
        "",
        *markdown.table(CLAIM_COLUMNS, (r._asdict() for r in measured.itertuples(index=False))),
        *(
            [
                "",
                f"Not measured (this study did not run the methods they compare): {'; '.join(unmeasured['quote'])}.",
            ]
            if len(unmeasured)
            else []
        ),
        "",
        "## Rows (mean [95 % CI] over units)",
        "",
        *markdown.table(
            [markdown.Column("Method", "label", "text")]
            + [markdown.Column(title, metric, "text") for metric, title in ROW_METRICS.items()]
            + [markdown.Column("Units", "units", "text")],
            (
                {
                    "label": row["label"],
                    **{m: _cell(row, m) for m in ROW_METRICS},
                    "units": int(
                        max((row.get(f"{m}_units") for m in ROW_METRICS if pd.notna(row.get(f"{m}_units"))), default=0)
                    ),
                }
                for _, row in rows.iterrows()
            ),
        ),
    ]
    if sensitivity is not None and len(sensitivity):
        lines += [
            "",
            "## Sensitivity of the proposed method (variant - proposed, paired)",
            "",
            *markdown.table(SENSITIVITY_COLUMNS, (r._asdict() for r in sensitivity.itertuples(index=False))),
        ]
    if other_weightings is not None and len(other_weightings):
        lines += [
            "",
            "## Other weighting methods against the proposed method (method - proposed, paired)",
            "",
            "Not claims of the paper: where the proposed method stands among the weighting methods of "
            "docs/weighting.md, at the same budget, from the same initial network and batches in every unit.",
            "",
            *markdown.table(OTHER_WEIGHTING_COLUMNS, (r._asdict() for r in other_weightings.itertuples(index=False))),
        ]
    if converged is not None and len(converged):
        lines += [
            "",
            "## Convergence (validation subjects)",
            "",
            "End-of-training gain of the validation accuracy, in points: the mean of the last h epochs "
            "minus the mean of the h epochs before them (h: an eighth of the epochs, at least 2; the "
            "Epochs column gives the 2h epochs), mean and 95 % CI over units; a row has plateaued when "
            f"the upper bound is below {PLATEAU_POINTS:g} point. Curves: "
            "`learning_curves.csv` and `learning_curves.png` in the study directory.",
            "",
            *markdown.table(
                CONVERGENCE_COLUMNS,
                (
                    {**r._asdict(), "epochs": f"{r.from_epoch} -> {r.to_epoch}"}
                    for r in converged.itertuples(index=False)
                ),
            ),
        ]
    lines += [
        "",
        "Step statistics (experiments/face_expression/claims.py): "
        + "; ".join(f"`{k}`: {v}" for k, v in STEP_STATISTICS.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def seed_run_minutes(run_dir: Path) -> float:
    """A seed run's wall time in minutes, from its files: ``config.yaml`` (written when the run starts
    or resumes) to ``per_fold.csv`` (written when it ends)."""
    return ((run_dir / "per_fold.csv").stat().st_mtime - (run_dir / "config.yaml").stat().st_mtime) / 60


def seed_work_minutes(run_dir: Path) -> float:
    """A seed run's (method, fold) work in minutes: ``train_seconds`` (training and per-epoch validation)
    summed over ``per_fold.csv``; unlike :func:`seed_run_minutes` it counts every invocation of a
    resumed run."""
    return float(pd.read_csv(run_dir / "per_fold.csv")["train_seconds"].sum()) / 60


def _wall_times(run_dirs: dict[int, Path] | None) -> str:
    """The seed runs' wall time, from the first run's start (or resume) to the last run's end (seeds run
    one after another or side by side), each run's own minutes, and each run's summed (method, fold) work."""
    if not run_dirs:
        return "-"
    minutes = {seed: seed_run_minutes(path) for seed, path in run_dirs.items()}
    first = min((path / "config.yaml").stat().st_mtime for path in run_dirs.values())
    last = max((path / "per_fold.csv").stat().st_mtime for path in run_dirs.values())
    each = ", ".join(f"seed {seed} {m:.1f} min" for seed, m in minutes.items())
    work = ", ".join(f"seed {seed} {seed_work_minutes(path):.1f} min" for seed, path in run_dirs.items())
    return (
        f"{(last - first) / 60:.1f} min (runs: {each}; from the runs' config.yaml, written when a run starts "
        f"or resumes, to their per_fold.csv); (method, fold) work summed over every invocation: {work} "
        "(training and per-epoch validation, `train_seconds` of per_fold.csv)"
    )


def run_seeds_in_parallel(configs: dict[int, ExperimentConfig], study_dir: Path, jobs: int, resume: bool) -> None:
    """Each seed's run as ``dynamic-mtl run --config <study>/seed<s>.config.yaml`` in its own process, at
    most ``jobs`` at a time, each with :func:`threads_per_job` TensorFlow threads; output in
    ``<study>/seed<s>.log`` (:func:`experiments.processes.run_side_by_side`). The small networks of the study
    use two cores poorly from one process, so two single-threaded runs side by side train more images per
    second than one run on both cores (``make bench``, harness section). Raises
    :class:`experiments.rundir.RunError` naming every seed whose run failed, with the end of its log, once the
    others have finished (they stay resumable)."""
    import sys

    from experiments.rundir import RunError

    study_dir.mkdir(parents=True, exist_ok=True)
    commands, logs = {}, {}
    for seed, config in configs.items():
        path = study_dir / f"seed{seed}.config.yaml"
        config.save(path)
        command = [sys.executable, "-m", "experiments.cli", "run", "--config", str(path), "--quiet"]
        commands[f"seed {seed}"] = [*command, *(["--resume"] if resume else [])]
        logs[f"seed {seed}"] = study_dir / f"seed{seed}.log"
    failed = run_side_by_side(commands, logs, jobs, append=True)
    if failed:
        tails = "; ".join(f"{name}: {log_tail(logs[name])}" for name in failed)
        raise RunError(f"{len(failed)} seed run(s) failed ({tails}); rerun the study with --resume to continue")


def check_seeds(seeds: list[int]) -> None:
    """Refuse an empty or repeated seed list (a repeated seed would count its units twice)."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct and non-empty, got {seeds}")


def run_study(
    config: ExperimentConfig,
    seeds: list[int],
    study_id: str,
    resume: bool = False,
    progress: bool = True,
    command: str = "dynamic-mtl study",
    jobs: int = 1,
) -> Path:
    """Run ``config`` once per seed, then write the study files; returns the study directory.

    ``jobs`` > 1: up to ``jobs`` seeds at a time, each in its own process (:func:`run_seeds_in_parallel`).
    """
    from experiments.environment import environment
    from experiments.face_expression.run import run_experiment

    check_seeds(seeds)
    start = time.perf_counter()
    study_dir = run_directory(config.results_dir, config.dataset, study_id)
    run_dirs = {seed: seed_run_dir(config, study_id, seed) for seed in seeds}
    pending = [s for s in seeds if not (resume and (run_dirs[s] / "per_fold.csv").is_file())]
    if jobs > 1 and len(pending) > 1:
        run_seeds_in_parallel({s: seed_config(config, study_id, seeds, s) for s in pending}, study_dir, jobs, resume)
    else:
        for seed in pending:
            run_experiment(seed_config(config, study_id, seeds, seed), resume=resume, progress=progress)
    units = gather_units(run_dirs)
    rows = method_rows(units)
    claims = evaluate_claims(units)
    sensitivity = evaluate_sensitivity(units)
    other_weightings = evaluate_other_weightings(units)
    curves = gather_curves(run_dirs)
    from experiments.face_expression.methods import parse_method

    reports = {m: parse_method(m).reports for m in units["method"].unique()}
    converged = convergence(curves, reports)
    if len(curves):
        curves.to_csv(study_dir / "learning_curves.csv", index=False)
        plot_curves(curves, study_dir / "learning_curves.png", reports)
    sensitivity.to_csv(study_dir / "sensitivity.csv", index=False)
    other_weightings.to_csv(study_dir / "other_weightings.csv", index=False)
    converged.to_csv(study_dir / "convergence.csv", index=False)
    units.to_csv(study_dir / "units.csv", index=False)
    rows.to_csv(study_dir / "rows.csv", index=False)
    claims.to_csv(study_dir / "claims.csv", index=False)
    machine = environment()["machine"]
    report = reproduction_markdown(
        config,
        seeds,
        units,
        rows,
        claims,
        command,
        machine,
        time.perf_counter() - start,
        sensitivity,
        converged,
        run_dirs,
        other_weightings,
    )
    (study_dir / "reproduction.md").write_text(report)
    (study_dir / "study.json").write_text(
        json.dumps({"seeds": seeds, "runs": {s: str(p) for s, p in run_dirs.items()}}, indent=2)
    )
    return study_dir


def register(subparsers) -> None:
    from experiments.cli import add_quiet_argument
    from experiments.face_expression.config import bundled_configs
    from experiments.typed_config import add_config_argument

    p = subparsers.add_parser("study", help="run a config over several seeds and write claim-by-claim verdicts")
    add_config_argument(p, ", ".join(bundled_configs()), default="study")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds (default 0 1 2)")
    p.add_argument("--study-id", default="study", help="results/<dataset>/<study-id> (default study)")
    p.add_argument("--folds", type=int, nargs="+", help="only these test folds")
    p.add_argument("--methods", nargs="+", help="only these methods")
    p.add_argument("--epochs", type=int, help="override epochs")
    p.add_argument("--results-dir", help="results root (default results)")
    p.add_argument("--data-dir", help="prepared dataset directory (override)")
    p.add_argument("--pretrained", help="pretrained verification checkpoint (.keras), or 'none'")
    p.add_argument("--publish", help="also copy reproduction.md to this path (e.g. docs/reproduction.md)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted study with the same --study-id")
    add_quiet_argument(p)
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="seeds run at a time, each in its own process with the cores shared out (default 1: one after "
        "another in this process); 2 on a 2-core machine trains the small study networks faster",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    import sys

    config = ExperimentConfig.load(args.config).override(
        folds=args.folds,
        **methods_override(args.methods),
        epochs=args.epochs,
        results_dir=args.results_dir,
        data_dir=args.data_dir,
        pretrained_checkpoint=args.pretrained,
    )
    command = "dynamic-mtl " + " ".join(sys.argv[1:]) if sys.argv[1:] else "dynamic-mtl study"
    try:
        check_seeds(args.seeds)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    except ValueError as error:
        print(f"dynamic-mtl study: error: {error}", file=sys.stderr)
        return 2
    from experiments.rundir import RunError

    try:
        study_dir = run_study(
            config,
            args.seeds,
            args.study_id,
            resume=args.resume,
            progress=not args.quiet,
            command=command,
            jobs=args.jobs,
        )
    except RunError as error:
        print(f"dynamic-mtl study: error: {error}", file=sys.stderr)
        return 2
    if args.publish:
        Path(args.publish).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(study_dir / "reproduction.md", args.publish)
    print((study_dir / "reproduction.md").read_text(), flush=True)
    print(f"[dynamic-mtl] study written to {study_dir}")
    return 0
