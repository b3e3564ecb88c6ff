"""``python -m experiments.ttc.seeds``: every TTC table and figure over paired seeds, with intervals and
claim-by-claim verdicts (the generated section 7 of docs/ttc.md).

Per dataset:

1. **alpha learning rate**: for every rate of ``--alpha-lr-grid`` and each of the first ``--alpha-lr-seeds``
   seeds, a DMT is trained and scored on the *validation* split; the rate with the best mean over those seeds
   is used everywhere after (never chosen on a reported statistic);
2. **one run per seed** (:func:`experiments.ttc.runner.run`, run id ``seed<k>``): within a seed every model
   sees the same data split and, per task, the same batches (the runner's batch seed);
3. **statistics** over seeds (:mod:`experiments.statistics`): mean and 95 % t-interval per model and task,
   paired differences between models (Wilcoxon p), a permutation test (task relabelling, exact) for the
   alpha-relatedness correlation, the median and an order-statistic interval of the incremental speed-ups;
4. **verdicts**: the paper's claims quoted with measurement, statistic and verdict, written to
   ``<out>/<dataset>/seeds/summary.md`` and, with ``--docs``, into docs/ttc.md between the markers
   ``<!-- BEGIN GENERATED: ttc-seeds -->`` / ``<!-- END GENERATED: ttc-seeds -->``.

``--jobs N`` runs the seeds of steps 1 and 2 side by side, each in its own process
(:func:`experiments.processes.run_side_by_side`: one log per seed and step under ``<out>/<dataset>/seeds/``).
Every finished seed step keeps its wall and CPU seconds (``seed<k>.<step>.usage.json``), and ``--resume`` keeps
the steps that finished with the same settings and makes the rest (a killed command loses only the steps it
was in), so the report's times add up every step whichever invocation made it.
Every seed's TensorFlow computations use :data:`SEED_THREADS` intra-op threads whatever ``--jobs`` (a sum split
over more threads rounds differently), so a seed computes the same numbers one after another or side by side.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from experiments import markdown
from experiments import statistics as st
from experiments.rundir import RunError, atomic_write_text
from experiments.ttc.config import TTCConfig, apply_settings, resolve_config
from experiments.typed_config import add_settings_argument

BEGIN, END = "<!-- BEGIN GENERATED: ttc-seeds -->", "<!-- END GENERATED: ttc-seeds -->"
#: The budget profile of ``make reproduce-ttc`` (5 seeds of both embedded datasets within 30 min on 2 cores
#: with ``--jobs 2``). The cross-stitch baseline (not in the paper's tables) is left out: it cost a fifth of each
#: seed's run (``--set crossstitch=true`` puts it back). The capacity control (single-task nets trained T x
#: longer, ``ST_long``) is in (``--set capacity_control=false`` leaves it out).
SEEDS_PROFILE = {
    "digits": dict(
        steps_per_task=100,
        incremental_steps=120,
        curve_every=5,
        removal_steps_per_task=40,
        crossstitch=False,
        capacity_control=True,
    ),
    "synthattrs": dict(
        crossstitch=False,
        capacity_control=True,
        n_train=1500,
        n_val=300,
        n_test=800,
        size=20,
        steps_per_task=100,
        removal_steps_per_task=30,
        incremental_steps=150,
        curve_every=10,
        history_every=50,
        table3_steps_per_task=60,
        table3_groups=[["mustache", "goatee"]],
    ),
}
ALPHA_LR_GRID = (0.01, 0.1)
#: The alpha rate is chosen on the validation split of this many seeds (the first ones): each costs a DMT per rate.
ALPHA_LR_SEEDS = 3
#: TensorFlow intra-op threads of every seed's training and evaluation, whatever ``--jobs`` and the core count:
#: an operation that splits a sum over more threads rounds differently, so a fixed count gives a seed the same
#: numbers run one after another (``--jobs 1``) or side by side. The networks are small enough that a second
#: thread per operation gains little; two seeds side by side use two cores.
SEED_THREADS = 1


def fix_threads() -> None:
    """Sets this process's TensorFlow intra-op threads to :data:`SEED_THREADS` (before TensorFlow runs)."""
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(SEED_THREADS)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if tf.config.threading.get_intra_op_parallelism_threads() != SEED_THREADS:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(SEED_THREADS)
            except RuntimeError:  # TensorFlow already ran: its thread pools are made
                print(
                    f"experiments.ttc.seeds: warning: TensorFlow started before its intra-op threads could be set "
                    f"to {SEED_THREADS}; numbers may differ in the last bits from a run in a fresh process",
                    file=sys.stderr,
                )


# --------------------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------------------
def _config(dataset: str, out: str, seed: int, quick: bool, settings=(), **overrides) -> TTCConfig:
    """The config of one seed: the dataset's defaults, the seeds profile (or ``--quick``), ``overrides``, then
    the ``--set`` assignments ``settings``."""
    values = {} if quick else dict(SEEDS_PROFILE.get(dataset, {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = resolve_config(dataset, out, quick=quick, seed=seed, **values)
    return apply_settings(config, settings, quick=quick) if settings else config


def best_alpha_lr(table: pd.DataFrame) -> float:
    """The rate with the best mean validation accuracy over the seeds of a selection table."""
    return float(table.groupby("alpha_lr")["val_accuracy"].mean().idxmax())


def selection_table(
    dataset: str, out: str, seeds, grid, quick: bool, progress: bool = False, settings=(), **overrides
) -> pd.DataFrame:
    """One row per seed and rate: the validation accuracy (%) of a DMT trained with that alpha rate."""
    from experiments.ttc.runner import _Lab, graph_rewrites, load_task_data

    rows = []
    for seed in seeds:
        config = _config(dataset, out, seed, quick, settings, **overrides)
        data = load_task_data(config, progress=progress)
        reusable: dict = {}  # one DMT object (and traced step) for every rate of this seed
        for rate in grid:
            config.alpha_lr = float(rate)
            lab = _Lab(config, data, progress, reusable=reusable)
            with graph_rewrites():  # as in the runs (experiments.ttc.runner.GRAPH_REWRITES)
                accs, _ = lab.train_eval("DMT", list(config.tasks), config.steps_per_task, splits=("val",), keep=False)
            rows.append(dict(seed=seed, alpha_lr=float(rate), val_accuracy=100.0 * float(np.mean(accs["val"]))))
    return pd.DataFrame(rows)


def run_seeds(
    dataset: str, out: str, seeds, quick: bool, alpha_lr: float, progress: bool = False, settings=(), **overrides
) -> list[Path]:
    """One :func:`experiments.ttc.runner.run` per seed (run id ``seed<k>``, replaced if it exists)."""
    import shutil

    from experiments.ttc.runner import run

    dirs = []
    for seed in seeds:
        config = _config(dataset, out, seed, quick, settings, alpha_lr=alpha_lr, run_id=f"seed{seed}", **overrides)
        target = Path(out) / dataset / f"seed{seed}"
        if target.exists():
            shutil.rmtree(target)
        dirs.append(run(config, progress=progress))
    return dirs


def _seeds_dir(out: str, dataset: str) -> Path:
    return Path(out) / dataset / "seeds"


def _selection_file(out: str, dataset: str, seed: int) -> Path:
    return _seeds_dir(out, dataset) / f"alpha_lr_selection.seed{seed}.csv"


def _worker_argv(args: argparse.Namespace, dataset: str, step: str, seed: int, alpha_lr: float | None) -> list[str]:
    """The command line of one seed's step (``select`` or ``run``) in its own process."""
    argv = [sys.executable, "-m", "experiments.ttc.seeds", "--datasets", dataset, "--out", str(args.out)]
    argv += [
        "--worker",
        step,
        "--worker-seed",
        str(seed),
        "--alpha-lr-grid",
        *(repr(float(r)) for r in args.alpha_lr_grid),
    ]
    if alpha_lr is not None:
        argv += ["--alpha-lr", repr(float(alpha_lr))]
    if args.data_root:
        argv += ["--data-root", str(args.data_root)]
    argv += ["--quick"] if args.quick else []
    argv += ["--capacity-control"] if args.capacity_control else []
    argv += ["--set", *args.settings] if args.settings else []
    return argv


def _usage_file(out: str, dataset: str, seed: int, step: str) -> Path:
    return _seeds_dir(out, dataset) / f"seed{seed}.{step}.usage.json"


def _run_dir(out: str, dataset: str, seed: int) -> Path:
    return Path(out) / dataset / f"seed{seed}"


def _step_config(args: argparse.Namespace, dataset: str, seed: int, alpha_lr: float | None) -> TTCConfig:
    """The config a seed's step resolves (the run's, with the chosen alpha rate; the selection's without)."""
    extra = dict(data_root=args.data_root, capacity_control=True if args.capacity_control else None)
    if alpha_lr is not None:
        extra.update(alpha_lr=alpha_lr, run_id=f"seed{seed}")
    return _config(dataset, args.out, seed, args.quick, args.settings, **extra)


def _comparable(config: TTCConfig | dict) -> dict:
    """A config as its JSON file holds it, without the fields a selection does not fix (rate, run id)."""
    values = json.loads(json.dumps(config.to_dict() if isinstance(config, TTCConfig) else config))
    return {k: v for k, v in values.items() if k not in ("alpha_lr", "run_id")}


def step_done(args: argparse.Namespace, dataset: str, step: str, seed: int, alpha_lr: float | None) -> bool:
    """``--resume``: whether a seed's step finished earlier with this invocation's settings. A run is done when
    its ``results.json`` exists; a selection when its table holds every rate of the grid and the settings it
    was made with (its ``.config.json``, or the seed's finished run) are this invocation's. Raises RunError when
    a finished step was made with other settings (rerun without ``--resume`` to replace it)."""
    if not args.resume:
        return False
    if step == "run":
        run_dir = _run_dir(args.out, dataset, seed)
        if not (run_dir / "results.json").is_file():
            return False
        saved = json.loads((run_dir / "config.json").read_text())
        expected = json.loads(json.dumps(_step_config(args, dataset, seed, alpha_lr).to_dict()))
    else:
        path = _selection_file(args.out, dataset, seed)
        if not path.is_file() or set(pd.read_csv(path)["alpha_lr"]) != {float(r) for r in args.alpha_lr_grid}:
            return False
        record, run_config = path.with_suffix(".config.json"), _run_dir(args.out, dataset, seed) / "config.json"
        source = record if record.is_file() else run_config if run_config.is_file() else None
        if source is None:
            return False  # no record of its settings: made again
        saved = _comparable(json.loads(source.read_text()))
        expected = _comparable(_step_config(args, dataset, seed, None))
    if saved != expected:
        changed = sorted(k for k in set(saved) | set(expected) if saved.get(k) != expected.get(k))
        raise RunError(
            f"seed {seed}'s {step} step in {_seeds_dir(args.out, dataset).parent} was made with other settings "
            f"({', '.join(changed)}); rerun without --resume to replace it"
        )
    return True


def run_step(args: argparse.Namespace, dataset: str, step: str, seed: int, alpha_lr: float | None) -> None:
    """One seed's step in this process: ``select`` writes the seed's rows of the selection table (and the
    settings it used), ``run`` makes the seed's run directory."""
    extra = dict(data_root=args.data_root, capacity_control=True if args.capacity_control else None)
    if step == "select":
        table = selection_table(
            dataset, args.out, [seed], args.alpha_lr_grid, args.quick, args.progress, args.settings, **extra
        )
        path = _selection_file(args.out, dataset, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        config = _comparable(_step_config(args, dataset, seed, None))
        atomic_write_text(path.with_suffix(".config.json"), json.dumps(config, indent=2) + "\n")
        atomic_write_text(path, table.to_csv(index=False))
    else:
        run_seeds(dataset, args.out, [seed], args.quick, alpha_lr, args.progress, args.settings, **extra)


def _record_usage(args: argparse.Namespace, dataset: str, seed: int, step: str, wall: float, cpu: float) -> None:
    path = _usage_file(args.out, dataset, seed, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2)}) + "\n")


def run_steps(args: argparse.Namespace, steps) -> dict[tuple[str, int], str]:
    """Each ``(dataset, step, seed, alpha_lr)`` of ``steps`` not done before (:func:`step_done`): with
    ``--jobs 1`` one after another in this process, else each in its own process, ``args.jobs`` at a time in
    the order given (log ``<out>/<dataset>/seeds/seed<k>.<step>.log``). Each finished step's wall and CPU
    seconds are kept in ``seed<k>.<step>.usage.json``. Returns {(dataset, seed): "<name>: <error>"} for the
    failed ones."""
    from experiments.processes import log_tail, run_side_by_side

    todo = [(d, step, s, rate) for d, step, s, rate in steps if not step_done(args, d, step, s, rate)]
    failed: dict[tuple[str, int], str] = {}
    if args.jobs == 1:
        for d, step, s, rate in todo:
            wall, cpu = time.perf_counter(), _cpu_seconds()
            try:
                run_step(args, d, step, s, rate)
            except (ValueError, FileNotFoundError, KeyError, RunError) as err:
                failed[(d, s)] = f"{d} seed {s} ({step}): {err}"
                continue
            _record_usage(args, d, s, step, time.perf_counter() - wall, _cpu_seconds() - cpu)
        return failed
    names = {f"{d} seed {s} ({step})": (d, step, s, rate) for d, step, s, rate in todo}
    commands = {n: _worker_argv(args, d, step, s, rate) for n, (d, step, s, rate) in names.items()}
    logs = {n: _seeds_dir(args.out, d) / f"seed{s}.{step}.log" for n, (d, step, s, _) in names.items()}
    measured: dict = {}
    failures = run_side_by_side(
        commands, logs, args.jobs, prefix="[experiments.ttc.seeds]", intra_op_threads=SEED_THREADS, usage=measured
    )
    for name, (wall, cpu) in measured.items():
        d, step, s, _ = names[name]
        if name not in failures:
            _record_usage(args, d, s, step, wall, cpu)
    return {(names[n][0], names[n][2]): f"{n}: {log_tail(logs[n])}" for n in failures}


def run_all(args: argparse.Namespace, seeds) -> tuple[dict, dict]:
    """Every dataset's seeds' alpha-rate selections, then every dataset's seeds' runs (:func:`run_steps`),
    the datasets' seeds in one queue, largest dataset first (so no core waits for one dataset's last seed
    while another dataset has work). Returns ({dataset: (chosen rate, selection table, run dirs)},
    {dataset: error})."""
    errors: dict[str, str] = {}
    # the largest datasets first (turns per task x tasks), so the small ones fill the cores at the end
    size = {}
    for dataset in args.datasets:
        config = _config(dataset, args.out, seeds[0], args.quick, args.settings, data_root=args.data_root)
        size[dataset] = config.steps_per_task * len(config.tasks)
    order = sorted(args.datasets, key=lambda d: -size[d])

    def fail(failed: dict) -> None:
        for dataset in dict.fromkeys(d for d, _ in failed):
            tails = "; ".join(text for (d, _), text in failed.items() if d == dataset)
            errors[dataset] = f"{sum(d == dataset for d, _ in failed)} seed step(s) failed ({tails})"

    chosen_on = _selection_seeds(args, seeds)
    done = {}
    try:
        fail(run_steps(args, [(d, "select", s, None) for d in order for s in chosen_on]))
        for dataset in [d for d in order if d not in errors]:
            selection = pd.concat(
                [pd.read_csv(_selection_file(args.out, dataset, s)) for s in chosen_on], ignore_index=True
            )
            done[dataset] = (best_alpha_lr(selection), selection)
        fail(run_steps(args, [(d, "run", s, done[d][0]) for d in done for s in seeds]))
    except RunError as err:  # --resume found a step made with other settings
        return {}, {d: str(err) for d in order}
    results = {d: (*done[d], [_run_dir(args.out, d, s) for s in seeds]) for d in done if d not in errors}
    return results, errors


def step_usage(args: argparse.Namespace, dataset: str, seeds) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds) added up over a dataset's recorded seed steps, the number of steps with a
    record, and the number without (made before step times were kept)."""
    wall = cpu = 0.0
    recorded = missing = 0
    steps = [(s, "select") for s in _selection_seeds(args, seeds)] + [(s, "run") for s in seeds]
    for seed, step in steps:
        path = _usage_file(args.out, dataset, seed, step)
        if path.is_file():
            usage = json.loads(path.read_text())
            wall, cpu, recorded = wall + usage["wall_seconds"], cpu + usage["cpu_seconds"], recorded + 1
        else:
            missing += 1
    return wall, cpu, recorded, missing


def _selection_seeds(args: argparse.Namespace, seeds) -> list[int]:
    """The seeds the alpha rate is chosen on: the first ``--alpha-lr-seeds`` (at least one)."""
    return list(seeds)[: max(1, args.alpha_lr_seeds)]


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


# --------------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------------
def load_runs(run_dirs) -> list[dict]:
    """results.json, config.json, environment.json (if any) and alphas.npz of each run."""
    runs = []
    for d in map(Path, run_dirs):
        alphas = np.load(d / "alphas.npz")
        runs.append(
            dict(
                dir=d,
                results=json.loads((d / "results.json").read_text()),
                config=json.loads((d / "config.json").read_text()),
                environment=(
                    json.loads((d / "environment.json").read_text()) if (d / "environment.json").is_file() else {}
                ),
                dmt=alphas["dmt"],
                phi=(
                    pd.read_csv(d / "groundtruth_phi.csv", index_col=0).to_numpy()
                    if (d / "groundtruth_phi.csv").is_file()
                    else None
                ),
            )
        )
    return runs


def median_interval(values) -> dict:
    """Median with the distribution-free order-statistic interval [x_(k), x_(n+1-k)] for it, k the largest
    with coverage 1 - 2 * P(Bin(n, 1/2) < k) >= 0.9 (n = 5: min..max, coverage 93.75 %). None / NaN are
    dropped, infinities kept."""
    from scipy.stats import binom

    x = np.sort(np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float))  # inf kept
    n = len(x)
    if n == 0:
        return dict(median=math.nan, low=math.nan, high=math.nan, coverage=math.nan, n=0)
    k, coverage = 1, 1 - 2 * binom.cdf(0, n, 0.5)
    while k + 1 <= n // 2 and 1 - 2 * binom.cdf(k, n, 0.5) >= 0.9:
        k += 1
        coverage = 1 - 2 * binom.cdf(k - 1, n, 0.5)
    return dict(median=float(np.median(x)), low=float(x[k - 1]), high=float(x[n - k]), coverage=float(coverage), n=n)


def relatedness_permutation_test(
    alphas: list[np.ndarray], phi: np.ndarray, max_permutations: int = 50000, seed: int = 0
) -> dict:
    """Mean over seeds of Spearman(symmetrised alpha, |phi|) over task pairs, and its permutation p-value.

    The null relabels the tasks of the ground truth (the same permutation for every seed), so the pair
    structure is kept; exact over all T! relabellings when T! <= ``max_permutations``, else Monte Carlo.
    """
    T = phi.shape[0]
    iu = np.triu_indices(T, 1)
    sym = [((a + a.T) / 2)[iu] for a in alphas]

    def stat(perm) -> float:
        rel = np.abs(phi[np.ix_(perm, perm)])[iu]
        return float(np.mean([spearmanr(s, rel).statistic for s in sym]))

    observed = stat(np.arange(T))
    if math.factorial(T) <= max_permutations:
        perms = itertools.permutations(range(T))
    else:
        rng = np.random.default_rng(seed)
        perms = (rng.permutation(T) for _ in range(max_permutations))
    null = np.asarray([stat(np.asarray(p)) for p in perms])
    per_seed = [float(spearmanr(s, np.abs(phi)[iu]).statistic) for s in sym]
    return dict(
        observed=observed,
        p_one_sided=float((null >= observed - 1e-12).mean()),
        null_95=float(np.quantile(null, 0.95)),
        per_seed=per_seed,
        permutations=int(null.size),
    )


def speedup(steps_alone, steps_incremental) -> float:
    """Steps alone / steps incremental to a target; a side that never reached it counts as infinitely slow
    (0 or inf); NaN if neither reached it."""
    if steps_alone is None and steps_incremental is None:
        return math.nan
    if steps_incremental is None:
        return 0.0
    if steps_alone is None:
        return math.inf
    return steps_alone / steps_incremental


def _fmt(i: st.Interval, digits: int = 1) -> str:
    return f"{i.mean:.{digits}f} [{i.low:.{digits}f}, {i.high:.{digits}f}]"


def _model_means(runs, key: str = "accuracy") -> pd.DataFrame:
    """One row per seed, one column per model: mean accuracy % over the tasks."""
    rows = []
    for r in runs:
        row = dict(seed=r["config"]["seed"])
        for model, accs in r["results"][key].items():
            row[model] = 100.0 * float(np.mean(accs))
        rows.append(row)
    return pd.DataFrame(rows).set_index("seed")


def main_table(runs) -> pd.DataFrame:
    """Per task and model: mean accuracy % and 95 % interval over seeds."""
    tasks = runs[0]["results"]["tasks"]
    models = list(runs[0]["results"]["accuracy"])
    rows = []
    for t, task in enumerate([*tasks, "mean"]):
        row = {"task": task}
        for m in models:
            vals = [
                100.0 * (np.mean(r["results"]["accuracy"][m]) if task == "mean" else r["results"]["accuracy"][m][t])
                for r in runs
            ]
            row[m] = _fmt(st.mean_ci(vals))
        rows.append(row)
    return pd.DataFrame(rows)


def _paired(a: pd.Series, b: pd.Series, sign: int = 1) -> tuple[st.PairedComparison, str]:
    comparison = st.paired_difference(a, b)
    return comparison, st.verdict(comparison, sign)


def analyse(dataset: str, runs: list[dict], selection: pd.DataFrame | None, chosen_lr: float | None) -> dict:
    """All statistics and the verdict rows of one dataset."""
    from experiments.ttc import paper

    verdicts, sections = [], []
    means = _model_means(runs)
    n = len(runs)
    from data_prep.ttc.datasets import ttc_dataset

    table_name = ttc_dataset(dataset).paper_table

    # main comparison
    sections.append(
        f"**{table_name} shape** (mean class accuracy %, test split; mean [95 % t-interval] over "
        f"{n} seeds):\n\n{markdown.frame_table(main_table(runs))}\n"
    )
    pair_rows = []
    for a, b in [("DMT", "ST"), ("DMT", "MT"), ("MT", "ST"), ("DMT", "CrossStitch"), ("DMT", "ST_long")]:
        if a in means and b in means:
            comparison, v = _paired(means[a], means[b])
            pair_rows.append(dict(comparison=f"{a} - {b}", difference=comparison.format(2), verdict=v))
    pairs = pd.DataFrame(pair_rows)
    sections.append(
        f"Paired differences of the task-mean accuracy (points; mean [95 % CI], Wilcoxon p):\n\n"
        f"{markdown.frame_table(pairs)}\n"
    )
    for row in pair_rows:
        if row["comparison"] in ("DMT - ST", "DMT - MT"):
            other = row["comparison"].split(" - ")[1]
            verdicts.append(
                dict(
                    claim=f'"DMT CNN performs better than {other} CNN" (Sec. 4.1-4.2, {table_name})',
                    measurement=f"task-mean accuracy, DMT {_fmt(st.mean_ci(means['DMT']))} vs {other} "
                    f"{_fmt(st.mean_ci(means[other]))}",
                    statistic=f"paired DMT - {other}: {row['difference']}",
                    verdict=row["verdict"],
                )
            )
    if "ST_long" in means:
        row = next(r for r in pair_rows if r["comparison"] == "DMT - ST_long")
        verdicts.append(
            dict(
                claim="(control) the connections add more than extra steps: DMT vs single-task nets trained T x longer",
                measurement=f"ST_long {_fmt(st.mean_ci(means['ST_long']))}",
                statistic=row["difference"],
                verdict=row["verdict"],
            )
        )

    # alpha relatedness
    if runs[0]["phi"] is not None:
        names = runs[0]["results"]["tasks"]
        test_mean = relatedness_permutation_test([r["dmt"].mean(axis=0) for r in runs], runs[0]["phi"])
        test_last = relatedness_permutation_test([r["dmt"][-1] for r in runs], runs[0]["phi"])
        ok = test_mean["p_one_sided"] < 0.05
        verdicts.append(
            dict(
                claim='"The learned TTC is able to reflect the correlation among different tasks" (Abstract, Sec. 4.3)',
                measurement=f"Spearman(alpha of a pair, ground-truth |phi|) over {len(names) * (len(names) - 1) // 2} "
                f"pairs, mean over {n} seeds: layer mean {test_mean['observed']:.2f} (seeds "
                f"{', '.join(f'{v:.2f}' for v in test_mean['per_seed'])}), last TTC {test_last['observed']:.2f}",
                statistic=f"permutation test ({test_mean['permutations']} task relabellings): one-sided p = "
                f"{test_mean['p_one_sided']:.3f} (null 95 % point {test_mean['null_95']:.2f}); last TTC p = "
                f"{test_last['p_one_sided']:.3f}",
                verdict=st.REPRODUCED if ok else st.INCONCLUSIVE,
            )
        )

    # removal
    rem = [r["results"]["removal"] for r in runs]
    keys = ["before", "cut", "stats", "connections only", "joint"]
    rem_means = pd.DataFrame(
        [{k: 100.0 * float(np.mean(x["accuracy"][k])) for k in keys} for x in rem], index=means.index
    )
    labels = {
        "before": "DMT, all tasks",
        "cut": "cut",
        "stats": "cut + statistics re-estimated (baseline)",
        "connections only": "+ connections re-trained (paper)",
        "joint": "+ connections and BNs re-trained (extension)",
    }
    rem_table = pd.DataFrame([dict(stage=labels[k], accuracy=_fmt(st.mean_ci(rem_means[k]))) for k in keys])
    diffs = []
    for a, b in [
        ("connections only", "stats"),
        ("joint", "connections only"),
        ("before", "connections only"),
        ("stats", "cut"),
    ]:
        comparison, v = _paired(rem_means[a], rem_means[b])
        diffs.append(dict(comparison=f"{labels[a]} - {labels[b]}", difference=comparison.format(2), verdict=v))
    sections.append(
        f"**Task removal** {rem[0]['removed']} (kept-task mean accuracy %):\n\n{markdown.frame_table(rem_table)}"
        f"\n\n{markdown.frame_table(pd.DataFrame(diffs))}\n"
    )
    drop = diffs[2]
    verdicts.append(
        dict(
            claim='"Task removal results in the optimal structure broken, decreasing model performance" (Sec. 4.3, '
            "Table 4 last row)",
            measurement=f"kept tasks {_fmt(st.mean_ci(rem_means['before']))} before, "
            f"{_fmt(st.mean_ci(rem_means['connections only']))} after re-training the connections",
            statistic=f"paired before - after: {drop['difference']}",
            verdict=drop["verdict"],
        )
    )
    gain = diffs[0]
    verdicts.append(
        dict(
            claim='Re-training "the TTC to reconnect the incomplete model" recovers accuracy (Sec. 4.3), beyond '
            "re-estimating the batch-norm statistics",
            measurement=f"statistics only {_fmt(st.mean_ci(rem_means['stats']))}, connections re-trained "
            f"{_fmt(st.mean_ci(rem_means['connections only']))}",
            statistic=f"paired difference: {gain['difference']}",
            verdict=gain["verdict"],
        )
    )

    # Table 6 (shares)
    kept = rem[0]["kept"]
    change = np.stack([np.asarray(x["share_change_pp"]) for x in rem])  # seeds x receiver x sender
    removed_share = np.stack([np.asarray(x["removed_former_share_pp"]) for x in rem])
    t6 = pd.DataFrame({"From \\ To": kept})
    for i, to in enumerate(kept):
        t6[to] = [_fmt(st.mean_ci(change[:, i, j])) for j in range(len(kept))]
    t6 = pd.concat(
        [
            t6,
            pd.DataFrame(
                [
                    {
                        "From \\ To": "removed tasks' former share",
                        **{to: _fmt(st.mean_ci(removed_share[:, i])) for i, to in enumerate(kept)},
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    sum_error = float(np.abs(change.sum(axis=2) - removed_share).max())
    off = ~np.eye(len(kept), dtype=bool)
    off_mean = st.mean_ci(change[:, off].mean(axis=1))
    diag_mean = st.mean_ci(change[:, ~off].mean(axis=1))
    sign_agree = float(np.mean([np.mean(np.sign(c[off]) == np.sign(change[:, off].mean(axis=0))) for c in change]))
    sections.append(
        f"**Table 6 (shares)**: change of each sender's share of a receiver's input in the last TTC "
        f"after removal and re-training the connections, percentage points, mean [95 % CI] over "
        f"{n} seeds; rows From, columns To:\n\n{markdown.frame_table(t6)}\n\nPer receiver the changes add up to "
        f"the removed tasks' former share (largest deviation {sum_error:.1e} pp). Mean change: own share "
        f"{_fmt(diag_mean)}, another kept task's share {_fmt(off_mean)}; per seed, "
        f"{100 * sign_agree:.0f} % of the off-diagonal changes have the sign of their mean over seeds.\n"
    )
    verdicts.append(
        dict(
            claim='"The former TTC weights of removed tasks are partitioned by reserved tasks" (Sec. 4.3, Table 6)',
            measurement=f"share changes per receiver sum to the removed share {_fmt(st.mean_ci(removed_share.mean(axis=1)))} "
            f"pp; own share {_fmt(diag_mean)}, other kept tasks {_fmt(off_mean)} pp",
            statistic=f"identity of the share definition (deviation {sum_error:.0e}); off-diagonal sign agreement "
            f"across seeds {100 * sign_agree:.0f} %",
            verdict="holds by construction (shares); which task gains is "
            + (st.INCONCLUSIVE if sign_agree < 0.8 else "stable across seeds"),
        )
    )

    # incremental
    inc = [r["results"].get("incremental") for r in runs]
    if all(inc):
        thr = median_interval([speedup(x["steps_alone"], x["steps_incremental"]) for x in inc])
        fin = median_interval(
            [speedup(x["steps_alone_to_alone_final"], x["steps_incremental_to_alone_final"]) for x in inc]
        )
        reached = sum(x["steps_incremental"] is not None or x["steps_alone"] is not None for x in inc)
        acc_inc = pd.Series([100 * x["test_acc_incremental"] for x in inc], index=means.index)
        acc_alone = pd.Series([100 * x["test_acc_alone"] for x in inc], index=means.index)
        comparison, v_acc = _paired(acc_inc, acc_alone)
        same = all(x["same_batches"] for x in inc)
        to_threshold = (
            f"median {thr['median']:.2f} (interval {thr['low']:.2f}-{thr['high']:.2f}, coverage "
            f"{100 * thr['coverage']:.1f} %, reached by at least one side in {reached} of {n} seeds)"
            if thr["n"]
            else f"not measured: neither side reached it in any of the {n} seeds"
        )
        sections.append(
            f"**Incremental addition** of `{inc[0]['task']}` (same batches for both curves in every seed: {same}): "
            f"speed-up to validation error 0.1 (a side that never reached it counts as infinitely slow), "
            f"{to_threshold}; speed-up to the alone "
            f"model's final error, median {fin['median']:.2f} ({fin['low']:.2f}-{fin['high']:.2f}, n={fin['n']}); "
            f"final test accuracy incremental - alone {comparison.format(2)}.\n"
        )
        speed = fin if thr["n"] < n else thr
        if not speed["coverage"] >= 0.9:  # too few seeds for a 90 % interval of the median
            v = st.INCONCLUSIVE
        else:
            v = st.REPRODUCED if speed["low"] > 1 else st.NOT_REPRODUCED if speed["high"] < 1 else st.INCONCLUSIVE
        verdicts.append(
            dict(
                claim=f'Incremental addition "is about {paper.FIGURE6_SPEEDUP:.0f} times faster than training a '
                'single-task CNN model to reach the error rate of 0.1" (Sec. 4.4, Fig. 6)',
                measurement=f"speed-up (steps alone / steps incremental) to "
                f"{'error 0.1' if speed is thr else 'the alone model final error'}: median "
                f"{speed['median']:.2f}",
                statistic=f"order-statistic interval {speed['low']:.2f}-{speed['high']:.2f} "
                f"({100 * speed['coverage']:.1f} %, n={speed['n']}); 4x inside: "
                f"{speed['low'] <= paper.FIGURE6_SPEEDUP <= speed['high']}",
                verdict=f"{v} (faster); {'about 4x: ' + ('yes' if speed['low'] <= 4 <= speed['high'] else 'no')}",
            )
        )
        verdicts.append(
            dict(
                claim="(not a paper claim) final test accuracy of the added task, incremental vs trained alone",
                measurement=f"test accuracy incremental {_fmt(st.mean_ci(acc_inc))} vs alone {_fmt(st.mean_ci(acc_alone))}",
                statistic=f"paired difference {comparison.format(2)}",
                verdict={st.REPRODUCED: "incremental higher", st.NOT_REPRODUCED: "incremental lower"}.get(
                    v_acc, "no difference shown"
                ),
            )
        )

    # Table 3
    if all("table3" in r["results"] for r in runs):
        t3 = pd.concat([pd.DataFrame(r["results"]["table3"]).assign(seed=r["config"]["seed"]) for r in runs])
        t3["accuracy"] *= 100.0
        per = t3.groupby(["seed", "regime", "model"])["accuracy"].mean().unstack(["regime", "model"])
        rows = []
        for model in ("ST", "MT", "DMT"):
            comparison, v = _paired(per[("resampled", model)], per[("imbalanced", model)])
            rows.append(dict(comparison=f"{model}: resampled - imbalanced", difference=comparison.format(2), verdict=v))
        for other in ("ST", "MT"):
            comparison, v = _paired(per[("resampled", "DMT")], per[("resampled", other)])
            rows.append(dict(comparison=f"resampled: DMT - {other}", difference=comparison.format(2), verdict=v))
        groups = sorted(set(t3["group"]))
        sections.append(
            f"**Table 3 shape** (groups {groups}; group-mean accuracy %, paired over seeds):\n\n"
            f"{markdown.frame_table(pd.DataFrame(rows))}\n"
        )
        res = rows[0:3]
        verdicts.append(
            dict(
                claim="Resampling the minority class per task helps on imbalanced attributes (Sec. 4.1, Table 3)",
                measurement="; ".join(r["comparison"] + " " + r["difference"] for r in res),
                statistic="paired over seeds",
                verdict=", ".join(f"{r['comparison'].split(':')[0]} {r['verdict']}" for r in res),
            )
        )

    if selection is not None:
        sel = selection.groupby("alpha_lr")["val_accuracy"].apply(lambda v: _fmt(st.mean_ci(v))).reset_index()
        sel["alpha_lr"] = sel["alpha_lr"].map(lambda v: f"{v:g}")
        sections.insert(
            0,
            f"**Alpha learning rate** chosen on the validation split (DMT task-mean accuracy %, "
            f"mean [95 % CI] over {selection['seed'].nunique()} seeds): {chosen_lr:g}\n\n"
            f"{markdown.frame_table(sel.rename(columns={'val_accuracy': 'validation accuracy'}))}\n",
        )
    return dict(verdicts=pd.DataFrame(verdicts), sections=sections, means=means)


def render(dataset: str, analysis: dict, runs: list[dict], header: str) -> str:
    verdicts = analysis["verdicts"]
    return "\n".join(
        [
            f"### {dataset}\n",
            header,
            "\n**Claim-by-claim verdicts**\n",
            markdown.frame_table(verdicts),
            "",
            *analysis["sections"],
        ]
    )


def _split_block(path: Path) -> tuple[str, str, str]:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise ValueError(f"{path} lacks the markers {BEGIN} / {END}")
    head, rest = doc.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    return head, block, tail


def write_docs(path: Path, text: str, sections: dict[str, str] | None = None) -> None:
    """Replaces the text between the generated-section markers of ``path``: ``text`` (an introduction), then
    one section per dataset. ``sections`` (dataset -> text starting with ``### <dataset>``) replace the
    sections of the same datasets; sections of other datasets already in the block are kept, so a run of one
    dataset does not erase another's results."""
    head, block, tail = _split_block(path)
    merged: dict[str, str] = {}
    if sections is not None:
        for part in re.split(r"(?m)^### ", block)[1:]:
            merged[part.split("\n", 1)[0].strip()] = "### " + part.strip()
        merged.update({k: v.strip() for k, v in sections.items()})
    from experiments.ttc.config import DATASETS

    order = sorted(merged, key=lambda d: DATASETS.index(d) if d in DATASETS else len(DATASETS))
    body = "\n\n".join([text.strip(), *(merged[d] for d in order)])
    atomic_write_text(path, f"{head}{BEGIN}\n{body.strip()}\n{END}{tail}")


# --------------------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "synthattrs"])
    parser.add_argument("--seeds", type=int, default=5, help="number of paired seeds (0..N-1)")
    parser.add_argument("--out", default="results/ttc")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run (tiny profile), not a result")
    parser.add_argument("--alpha-lr-grid", type=float, nargs="+", default=list(ALPHA_LR_GRID))
    parser.add_argument(
        "--alpha-lr-seeds",
        type=int,
        default=ALPHA_LR_SEEDS,
        help=f"choose the alpha rate on the validation split of the first N seeds (default {ALPHA_LR_SEEDS}; "
        "at most --seeds)",
    )
    parser.add_argument(
        "--capacity-control",
        action="store_true",
        help="also ST nets trained T x longer (already in the seeds profile; this adds them to --quick)",
    )
    parser.add_argument("--docs", default=None, help="write the generated section into this file (docs/ttc.md)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep every seed step (alpha-rate selection, run) that finished with these settings and make the rest; "
        "a finished step made with other settings is refused",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="seeds run at a time, each in its own process with the cores shared out (default 1: one after "
        "another in this process); the same results either way",
    )
    add_settings_argument(
        parser, "override any field of every run's config (typed, e.g. --set steps_per_task=50), after the profile"
    )
    parser.add_argument("--worker", choices=("select", "run"), help=argparse.SUPPRESS)  # one seed's step (--jobs)
    parser.add_argument("--worker-seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--alpha-lr", type=float, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    fix_threads()
    if args.worker:
        return _worker(args)
    if args.seeds < 2:
        parser.error("--seeds must be >= 2 (intervals need two units)")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if args.alpha_lr_seeds < 2:
        parser.error("--alpha-lr-seeds must be >= 2 (the selection table gives intervals)")
    seeds = list(range(args.seeds))
    texts: dict[str, str] = {}
    machine = None
    command_start = time.perf_counter()
    command = f"python -m experiments.ttc.seeds {' '.join(argv if argv is not None else sys.argv[1:])}"
    results, errors = run_all(args, seeds)
    failed: list[str] = []
    for dataset in args.datasets:
        if dataset in errors:
            print(f"experiments.ttc.seeds: error: {dataset}: {errors[dataset]}", file=sys.stderr)
            failed.append(dataset)
            continue
        chosen, selection, dirs = results[dataset]
        runs = load_runs(dirs)
        config = runs[0]["config"]
        machine = runs[0]["environment"].get("machine") or machine
        wall, cpu, recorded, missing = step_usage(args, dataset, seeds)
        at_a_time = "one at a time" if args.jobs == 1 else f"{args.jobs} at a time beside the other datasets' seeds"
        took = (
            f"Its seed steps (alpha-rate selection and the {len(seeds)} runs, {at_a_time}) took {wall / 60:.1f} min "
            f"wall and {cpu / 60:.1f} min CPU added up"
            + (f" ({missing} step(s) made before step times were kept are not counted)" if missing else "")
            + "."
            if recorded
            else "Step times: not on record (every step was made before step times were kept)."
        )
        header = (
            f"Command: `{command}`. Data `{dataset}` ({_describe(config)}); {len(seeds)} paired seeds (0-{seeds[-1]}); profile "
            f"`{config['profile']}`{' (seeds budget)' if not args.quick else ''}. Machine: {machine or 'not recorded'}. "
            f"{took} Runs: `{Path(args.out) / dataset}/seed*`."
        )
        analysis = analyse(dataset, runs, selection, chosen)
        text = render(dataset, analysis, runs, header)
        seeds_dir = _seeds_dir(args.out, dataset)
        seeds_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(seeds_dir / "summary.md", text + "\n")
        atomic_write_text(seeds_dir / "verdicts.csv", analysis["verdicts"].to_csv(index=False))
        atomic_write_text(seeds_dir / "model_means_per_seed.csv", analysis["means"].to_csv())
        atomic_write_text(seeds_dir / "alpha_lr_selection.csv", selection.to_csv(index=False))
        texts[dataset] = text
        print(text)
        if args.docs:  # after every dataset, so a finished dataset is documented even if a later one is not
            pending = [d for d in args.datasets if d not in texts and d not in failed]
            wall = time.perf_counter() - command_start if not pending else None
            write_docs(Path(args.docs), _intro(args, texts, machine, wall), texts)
    return 2 if failed else 0


def _worker(args: argparse.Namespace) -> int:
    """One seed's step in its own process (``--jobs``): :func:`run_step`."""
    (dataset,) = args.datasets
    try:
        run_step(args, dataset, args.worker, args.worker_seed, args.alpha_lr)
    except (ValueError, FileNotFoundError, KeyError, RunError) as err:
        print(f"experiments.ttc.seeds: error: {err}", file=sys.stderr)
        return 2
    return 0


def _intro(args, texts: dict, machine: str | None = None, wall: float | None = None) -> str:
    """The introduction of the generated section: the command, the machine, what is missing, the verdicts'
    meaning; ``wall``: the whole command's wall time, once every dataset is done."""
    command = "make reproduce-ttc" if not args.quick else "make reproduce-ttc TTC_ARGS=--quick"
    missing = [d for d in args.datasets if d not in texts]
    jobs = f" with `--jobs {args.jobs}`" if args.jobs > 1 else ""
    return (
        f"Generated by `{command}` (`python -m experiments.ttc.seeds`{jobs}; each dataset's section names its "
        f"command, data, seeds and run time{f', on {machine}' if machine else ''})."
        + (
            f" {'This invocation (--resume: steps finished earlier were kept)' if args.resume else 'The whole command'}"
            f" took {wall / 60:.1f} min wall."
            if wall is not None
            else ""
        )
        + (f" Not finished when this was last written: {', '.join(missing)}." if missing else "")
        + " Verdicts: *reproduced* = the 95 % interval excludes no effect on the paper's side; *not "
        "reproduced* = it excludes it on the other side; *inconclusive* = it contains it. Our data are not "
        "the paper's (digits for CIFAR-10, synthetic faces for CelebA), so the verdicts are about the "
        "claims' direction on these data, not about the paper's numbers.\n\n"
    )


def _describe(config: dict) -> str:
    from data_prep.ttc.datasets import ttc_dataset

    arguments = set(ttc_dataset(config["dataset"]).arguments.values())
    if "n_train" in arguments:  # generated: as many images as asked for
        split = f"{config['n_train']} / {config['n_val']} / {config['n_test']} faces"
    elif "train_per_class" in arguments and config.get("train_per_class"):
        split = f"{config['train_per_class']} training images per class"
    else:
        split = "official split subsets"
    return (
        f"{split}, {config['size']}x{config['size']}, width x{config['width']}, {config['steps_per_task']} turns "
        f"per task, batch {config['batch_size']}"
        + ("" if config.get("crossstitch", True) else "; no cross-stitch baseline")
    )


if __name__ == "__main__":
    sys.exit(main())
