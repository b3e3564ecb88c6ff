"""``dynamic-mtl run``: the cross-validated protocol of Tables 2-4 and Figures 2 and 7."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import datasets
from experiments.face_expression.checkpoint_check import CheckpointMismatch, check_pretrained
from experiments.face_expression.config import ExperimentConfig
from experiments.face_expression.methods import expand_method_names, parse_method
from experiments.pretrain import DEFAULT_CHECKPOINT
from experiments.rundir import (
    RunError,
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    check_resume,
    check_run_id,
    new_run_id,
    open_run_dir,
    read_result,
    run_directory,
)

#: where `make pretrain` writes its checkpoint (used by `pretrained_checkpoint: auto`)
DEFAULT_PRETRAINED = Path(DEFAULT_CHECKPOINT)


def expand_methods(config: ExperimentConfig) -> list[str]:
    """The run's methods: ``methods``, then ``reduced_methods`` (run on ``reduced_folds`` only), with
    method groups expanded (:func:`~experiments.face_expression.methods.expand_method_names`)."""
    return expand_method_names([*config.methods, *config.reduced_methods], config.figure2_weights)


def method_folds(config: ExperimentConfig, method: str, folds: list[int]) -> list[int]:
    """The folds ``method`` runs on: ``folds``, or those of them in ``reduced_folds`` for a
    ``reduced_methods`` row that ``methods`` does not also list."""
    reduced = expand_method_names(config.reduced_methods, config.figure2_weights)
    if method in reduced and method not in expand_method_names(config.methods, config.figure2_weights):
        return [f for f in folds if f in config.reduced_folds]
    return list(folds)


def resolve_pretrained(config: ExperimentConfig) -> str | None:
    if config.pretrained_checkpoint in (None, "", "none"):
        return None
    if config.pretrained_checkpoint == "auto":
        # the default checkpoint is pretrained on generated faces: only a synthetic dataset takes it
        synthetic = datasets.get(config.dataset).synthetic
        return str(DEFAULT_PRETRAINED) if DEFAULT_PRETRAINED.exists() and synthetic else None
    path = Path(config.pretrained_checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"pretrained checkpoint {path} not found (run `make pretrain` or fix the path)")
    return str(path)


def resume_command(run_dir: Path, program: str | None = None) -> str:
    """The command that continues the run in ``run_dir`` with exactly its settings: with ``program`` None,
    runnable as printed on this machine (:func:`experiments.cli.cli_prefix`); a file read elsewhere
    (``results.md``) passes ``"dynamic-mtl"`` so that its text does not depend on this machine's PATH."""
    from experiments.cli import cli_prefix

    return f"{program or cli_prefix()} run --config {Path(run_dir) / 'config.yaml'} --resume"


def run_experiment(
    config: ExperimentConfig,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
    save_models: bool = False,
) -> Path:
    """Run every (method, fold) of ``config``; returns the run directory.

    Prints the run directory and its resume command first, then one line per finished (method,
    fold), and refreshes ``results.md`` after each method (marked partial until the end; the
    table CSVs and, last, ``per_fold.csv`` are written when every method is done). The run directory is
    locked for the run (:func:`experiments.rundir.run_lock`); ``resume`` continues it only with the
    same result-affecting settings. ``tensorboard``: also write TensorBoard scalars to
    ``tensorboard/<method>_fold<k>`` (per step: w_i, L_i, L3; per epoch: losses, accuracies and
    validation scores); ``save_models``: save each (method, fold)'s selected model as
    ``models/<method>_fold<k>.keras``. Neither changes a result. Raises
    :class:`experiments.rundir.RunError` (one-line message)
    when the run cannot start or continue, e.g. :class:`experiments.face_expression.training.RunDiverged`.
    """
    if config.run_id is not None:
        check_run_id(config.run_id)
    check_pretrained(config)  # a checkpoint that does not fit the profile: CheckpointMismatch before any work
    import tensorflow as tf

    from dynamic_mtl.distribute import make_strategy, worker_directory

    tf.get_logger().setLevel("ERROR")
    strategy = make_strategy(config.strategy)
    run_id = config.run_id or new_run_id()
    run_dir = run_directory(config.results_dir, config.dataset, run_id)
    # MultiWorkerMirroredStrategy: every worker trains; only the chief writes the run directory
    run_dir = worker_directory(strategy, run_dir)
    config = config.override(run_id=run_id)
    say(f"[dynamic-mtl] run directory: {run_dir}")
    say(f"[dynamic-mtl] if interrupted, resume with: {resume_command(run_dir)}")
    with open_run_dir(run_dir):
        if not resume and any((run_dir / "per_fold").glob("*.json")):
            raise FileExistsError(
                f"{run_dir} already holds results: pass --resume to continue it, or choose another --run-id"
            )
        if resume and (run_dir / "config.yaml").exists():
            check_resume(
                _saved_config(run_dir / "config.yaml").to_dict(),
                config.to_dict(),
                run_dir,
                same_settings=resume_command(run_dir),
            )
        _save_config(config, run_dir / "config.yaml")
        return _run_locked(config, run_dir, strategy, resume, progress, tensorboard, save_models)


def _run_locked(
    config: ExperimentConfig,
    run_dir: Path,
    strategy,
    resume: bool,
    progress: bool,
    tensorboard: bool,
    save_models: bool,
) -> Path:
    from tqdm.auto import tqdm

    from experiments.environment import environment
    from experiments.face_expression.data import ensure_prepared, load_prepared
    from experiments.face_expression.training import FoldRunner, RunDiverged

    ensure_prepared(config, progress=progress)
    data = load_prepared(config)
    folds = config.folds if config.folds is not None else data.fold_ids
    bad = sorted(set(folds) - set(data.fold_ids))
    if bad:
        raise ValueError(f"folds {bad} not in {config.data_dir}/folds.csv (has {data.fold_ids})")
    pretrained = resolve_pretrained(config)
    methods = [parse_method(m) for m in expand_methods(config)]
    skipped = [m.name for m in methods if m.needs_pretrained and not pretrained]
    methods = [m for m in methods if m.name not in skipped]
    env = environment()
    env.update(replicas=strategy.num_replicas_in_sync, pretrained_checkpoint=pretrained, skipped_methods=skipped)
    atomic_write_json(run_dir / "environment.json", env)
    if skipped:
        say(f"[dynamic-mtl] no pretrained checkpoint: skipping {skipped} (run `make pretrain` first)")

    splits = {fold: data.split(fold, config.validation_subjects, config.seed) for fold in folds}
    for fold, split in splits.items():
        if not len(split.test_pairs):
            say(
                f"[dynamic-mtl] fold {fold} has no verification pairs ({len(split.test_subjects)} test "
                "subject(s)): its verification metrics are left empty (NaN); use fewer folds for so few subjects"
            )
    num_identities = max(len(s.train_subjects) for s in splits.values())
    total = sum(
        ((config.epochs if m.weighting is not None else 0) + 1) * len(method_folds(config, m.name, folds))
        for m in methods
    )
    bar = tqdm(
        total=total,
        desc=f"{config.name} ({len(methods)} methods x {len(folds)} folds)",
        unit="epoch",
        disable=not progress,
        dynamic_ncols=True,
        file=sys.stdout,
    )
    runner = FoldRunner(
        config,
        data,
        run_dir,
        strategy,
        num_identities,
        pretrained,
        progress=bar,
        tensorboard=tensorboard,
        save_models=save_models,
    )
    results: list[dict] = []

    def publish(done: int, stopped: str | None = None) -> None:
        """The results of the first ``done`` methods (:func:`write_tables`): a partial ``results.md`` naming
        the methods still to run, or why the run ``stopped``; once every method is done, every table, the
        analyses and ``per_fold.csv``, and the tables printed."""
        pending = [m.name for m in methods[done:]]
        final = not (pending or stopped)
        write_tables(
            run_dir,
            config,
            results,
            folds,
            methods[:done],
            env["machine"],
            pending=pending or None,
            stopped=stopped,
            echo=final,
            class_names=list(data.expression_classes) if final else None,
        )

    try:
        for index, method in enumerate(methods):
            for fold in method_folds(config, method.name, folds):
                done = run_dir / "per_fold" / f"{method.name}_fold{fold}.json"
                result = read_result(done, warn=say) if resume else None
                if result is not None:
                    bar.update((config.epochs if method.weighting is not None else 0) + 1)
                    say(fold_line(result, run_dir, note="done earlier"))
                else:
                    start = time.perf_counter()
                    try:
                        result = runner.run(method, splits[fold], resume=resume)
                    except RunDiverged as err:
                        publish(index, stopped=str(err))
                        raise
                    atomic_write_json(done, result)
                    say(fold_line(result, run_dir, seconds=time.perf_counter() - start))
                results.append(result)
            if index + 1 < len(methods):
                publish(index + 1)
                say(f"[dynamic-mtl] {run_dir / 'results.md'} updated: {index + 1} of {len(methods)} methods done")
    finally:
        bar.close()
    env.update(compiled=runner.compile_settings())
    atomic_write_json(run_dir / "environment.json", env)
    publish(len(methods))
    return run_dir


def say(line: str) -> None:
    """One line of run feedback on stdout (above a progress bar when one is shown)."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def fold_line(result: dict, run_dir: Path, seconds: float | None = None, note: str | None = None) -> str:
    """``<method> fold <k>: validation ... | test ... | seconds`` for one finished (method, fold)."""
    from experiments.face_expression import tables

    def pct(value) -> str:
        return "-" if value is None or not np.isfinite(value) else f"{100 * float(value):.1f}%"

    method, fold = result["method"], result["fold"]
    verification = tables.verification_by_fold(run_dir, method, [fold])
    test_verification = float(verification["verification_accuracy"].iloc[0]) if len(verification) else float("nan")
    selected = (
        f"epoch {result['best_epoch'] + 1} of {result['epochs']}"
        if result.get("best_epoch", -1) >= 0
        else "no training epochs"
    )
    timing = note if note is not None else f"{seconds:.1f} s"
    return (
        f"[dynamic-mtl] {method} fold {fold}: validation score {pct(result.get('val_score'))} "
        f"(expression {pct(result.get('val_expression_accuracy'))}, verification "
        f"{pct(result.get('val_verification_accuracy'))}, {selected}) | test expression "
        f"{pct(result.get('expression_accuracy'))}, verification {pct(test_verification)} | {timing}"
    )


def _saved_config(path: Path) -> ExperimentConfig:
    try:
        return ExperimentConfig.load(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file ends the same way
        raise RunError(
            f"{path} is unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            "cannot check the settings of --resume: start a new --run-id"
        ) from err


def _save_config(config: ExperimentConfig, path: Path) -> None:
    atomic_save(path, config.save)


def write_tables(
    run_dir: Path,
    config: ExperimentConfig,
    results: list[dict],
    folds: list[int],
    methods,
    machine: str,
    pending: list[str] | None = None,
    stopped: str | None = None,
    echo: bool = True,
    class_names: list[str] | None = None,
) -> dict:
    """The table CSVs, ``results.md`` and, last, ``per_fold.csv`` (its presence marks a finished run
    for the figures and the study) from the finished (method, fold) results.

    ``pending`` (methods not run yet) or ``stopped`` (why the run stopped) mark a partial run: then
    only ``results.md`` is written, with a header that says so. A finished run also gets the
    further analyses of experiments/face_expression/analyses.py (``analyses/``: Delta-m, EER, ROC, confusion matrices).
    """
    from experiments.face_expression.analyses import write_analyses

    per_fold, built, report = render_results(run_dir, config, results, folds, methods, machine, pending, stopped)
    if not (pending or stopped):
        for name, frame in built.items():
            atomic_write_text(run_dir / f"{name}.csv", frame.to_csv(index=False))
        if len(per_fold):
            report += "\n\n" + write_analyses(run_dir, per_fold, methods, folds, class_names)
    atomic_write_text(run_dir / "results.md", report + "\n")
    if not (pending or stopped) and len(per_fold):
        atomic_write_text(run_dir / "per_fold.csv", per_fold.to_csv(index=False))
    if echo:
        print(report, flush=True)
    return built


def render_results(
    run_dir: Path,
    config: ExperimentConfig,
    results: list[dict],
    folds: list[int],
    methods,
    machine: str,
    pending: list[str] | None = None,
    stopped: str | None = None,
):
    """``(per_fold frame, tables, Markdown report)`` of the finished results (nothing written)."""
    from experiments.face_expression import tables
    from experiments.face_expression.paper_numbers import paper_dataset

    column = paper_dataset(config.dataset, config.expression_protocol)
    data_note = datasets.get(config.dataset).data_note(config.data_root or config.data_dir)
    header = (
        f"## dynamic_mtl results: `{config.name}` profile, run `{run_dir.name}`\n\n"
        f"Data: {data_note}. Machine: {machine}. Folds: {len(folds)} "
        f"({config.epochs} epochs, {config.backbone} at {config.image_size} px, batch {config.batch_size}). "
        f"Mean ± std over folds. The paper column is the published number for {column}, not a target."
    )
    if pending or stopped:
        header += (
            "\n\n**Partial run**"
            + (f": stopped, {stopped}" if stopped else "")
            + (f". Not run yet: {', '.join(pending)}" if pending else "")
            + f". Continue it with `{resume_command(run_dir, program='dynamic-mtl')}`."
        )
    names = {m.name for m in methods}
    results = [r for r in results if r["method"] in names]  # a stopped method publishes no row
    if not results:
        return pd.DataFrame(), {}, header + "\n\nNo method has finished yet.\n"
    per_fold = pd.DataFrame(results)
    verification_rows = []
    for method in methods:
        frame = tables.verification_by_fold(run_dir, method.name, folds)
        if len(frame):
            verification_rows.append(frame.assign(method=method.name))
    if verification_rows:
        per_fold = per_fold.merge(pd.concat(verification_rows), on=["method", "fold"], how="left")
    built = tables.build_tables(per_fold, {m.name: m for m in methods}, column, config.static_weights)
    return per_fold, built, tables.markdown_tables(built, header, column)


def register(subparsers) -> None:
    from experiments.cli import add_quiet_argument, add_run_id_argument
    from experiments.face_expression.config import bundled_configs
    from experiments.face_expression.run_options import description
    from experiments.typed_config import (
        add_config_argument,
        add_print_config_argument,
        add_seed_argument,
        add_settings_argument,
    )

    p = subparsers.add_parser(
        "run",
        help="run the cross-validated protocol of a config (Tables 2-4, Figures 2, 7)",
        description=description(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_argument(p, ", ".join(bundled_configs()), default="quick")
    p.add_argument("--dataset", choices=tuple(datasets.DATASETS), help="override the dataset")
    p.add_argument("--data-dir", help="prepared dataset directory (override)")
    p.add_argument("--data-root", help="raw CK+/Oulu-CASIA tree, prepared into --data-dir when needed")
    p.add_argument("--profile", help="alias of --config")
    p.add_argument(
        "--expression-protocol",
        choices=datasets.expression_protocols(),
        help="oulu6: Oulu-CASIA's 6 expression classes (Table 4) on any dataset",
    )
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), help="tf.distribute strategy")
    p.add_argument("--pretrained", help="pretrained verification checkpoint (.keras), or 'none'")
    add_run_id_argument(p, "results", "a timestamp")
    p.add_argument("--results-dir", help="results root (default results)")
    p.add_argument("--epochs", type=int, help="override epochs")
    p.add_argument("--folds", type=int, nargs="+", help="only these test folds")
    p.add_argument("--methods", nargs="+", help="only these methods (see experiments/face_expression/methods.py)")
    p.add_argument(
        "--jit-compile",
        choices=("true", "false", "auto"),
        help="XLA for the train step; auto: on for one GPU, off on CPU and under strategies",
    )
    p.add_argument("--steps-per-execution", type=int, help="train steps per tf.function call (8-32 on GPUs)")
    p.add_argument(
        "--mixed-precision",
        action="store_true",
        default=None,
        help="mixed_float16 network (GPUs); weight unit, losses and L3 stay float32",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run with the same --run-id and settings (printed at its start)",
    )
    add_quiet_argument(p)
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="TensorBoard scalars in RUN_DIR/tensorboard/<method>_fold<k>: w_i, L_i, L3 per step; "
        "losses, accuracies and validation scores per epoch "
        "(`tensorboard --logdir RUN_DIR/tensorboard`)",
    )
    p.add_argument(
        "--save-models",
        action="store_true",
        help="save each (method, fold)'s selected model as RUN_DIR/models/<method>_fold<k>.keras "
        "(keras.models.load_model)",
    )
    add_seed_argument(p, "the validation split, initialisation and data order")
    add_settings_argument(
        p,
        "override any config field, dotted for nested ones; the value is read as YAML and "
        "checked against the field's type (e.g. --set epochs=2 "
        "network_optimizer.learning_rate=1e-3 backbone_options.width=8)",
    )
    add_print_config_argument(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from experiments.face_expression.run_options import config_from_args

    config = config_from_args(args)  # every input checked before any work (ConfigError: exit 2)
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    try:
        run_dir = run_experiment(
            config,
            resume=args.resume,
            progress=not args.quiet,
            tensorboard=args.tensorboard,
            save_models=args.save_models,
        )
    except (RunError, CheckpointMismatch, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"dynamic-mtl run: error: {err}", file=sys.stderr)
        return 2
    print(f"[dynamic-mtl] results written to {run_dir}")
    return 0
