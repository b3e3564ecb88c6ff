"""``dynamic-mtl run``: the cross-validated protocol of Tables 2-4 and Figures 2 and 7."""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import pandas as pd

from experiments.checkpoint_check import CheckpointMismatch, check_pretrained
from experiments.config import ExperimentConfig
from experiments.methods import parse_method
from experiments.pretrain import DEFAULT_CHECKPOINT

#: where `make pretrain` writes its checkpoint (used by `pretrained_checkpoint: auto`)
DEFAULT_PRETRAINED = Path(DEFAULT_CHECKPOINT)


def expand_methods(config: ExperimentConfig) -> list[str]:
    """``static_sweep`` expands to ``static@w1`` for every Figure 2 weight."""
    out: list[str] = []
    for name in config.methods:
        if name == "static_sweep":
            out += [f"static@{w:.1f}" for w in config.figure2_weights]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def resolve_pretrained(config: ExperimentConfig) -> str | None:
    if config.pretrained_checkpoint in (None, "", "none"):
        return None
    if config.pretrained_checkpoint == "auto":
        return str(DEFAULT_PRETRAINED) if DEFAULT_PRETRAINED.exists() and config.dataset == "synthfaces" else None
    path = Path(config.pretrained_checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"pretrained checkpoint {path} not found (run `make pretrain` or fix the path)")
    return str(path)


def run_experiment(config: ExperimentConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run every (method, fold) of ``config``; returns the run directory."""
    check_pretrained(config)   # a checkpoint that does not fit the profile: CheckpointMismatch before any work
    import tensorflow as tf
    from tqdm.auto import tqdm

    from dynamic_mtl.distribute import make_strategy
    from experiments.data import ensure_prepared, load_prepared
    from experiments.environment import environment
    from experiments.training import FoldRunner

    tf.get_logger().setLevel("ERROR")
    strategy = make_strategy(config.strategy)
    run_id = config.run_id or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(config.results_dir) / config.dataset / run_id
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type not in (None, "chief") and not (
            resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs):
        # MultiWorkerMirroredStrategy: every worker trains; only the chief writes the run directory
        run_dir = run_dir / "workers" / f"{resolver.task_type}-{resolver.task_id}"
    if run_dir.exists() and not resume and any((run_dir / "per_fold").glob("*.json")):
        raise FileExistsError(f"{run_dir} already holds results: pass --resume to continue it, "
                              "or choose another --run-id")
    run_dir.mkdir(parents=True, exist_ok=True)
    config = config.override(run_id=run_id)
    config.save(run_dir / "config.yaml")

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
    env.update(replicas=strategy.num_replicas_in_sync, pretrained_checkpoint=pretrained,
               skipped_methods=skipped)
    (run_dir / "environment.json").write_text(json.dumps(env, indent=2))
    if skipped:
        print(f"[dynamic-mtl] no pretrained checkpoint: skipping {skipped} (run `make pretrain` first)", flush=True)

    splits = {fold: data.split(fold, config.validation_subjects, config.seed) for fold in folds}
    for fold, split in splits.items():
        if not len(split.test_pairs):
            print(f"[dynamic-mtl] fold {fold} has no verification pairs ({len(split.test_subjects)} test "
                  "subject(s)): its verification metrics are left empty (NaN); use fewer folds for so few subjects",
                  flush=True)
    num_identities = max(len(s.train_subjects) for s in splits.values())
    total = sum((config.epochs if m.weighting is not None else 0) + 1 for m in methods) * len(folds)
    bar = tqdm(total=total, desc=f"{config.name} ({len(methods)} methods x {len(folds)} folds)",
               unit="epoch", disable=not progress, dynamic_ncols=True, file=sys.stdout)
    runner = FoldRunner(config, data, run_dir, strategy, num_identities, pretrained, progress=bar)
    results = []
    for method in methods:
        for fold in folds:
            done = run_dir / "per_fold" / f"{method.name}_fold{fold}.json"
            if resume and done.exists():
                results.append(json.loads(done.read_text()))
                bar.update((config.epochs if method.weighting is not None else 0) + 1)
                continue
            result = runner.run(method, splits[fold], resume=resume)
            done.write_text(json.dumps(result, indent=2))
            results.append(result)
    bar.close()
    env.update(compiled=runner.compile_settings())
    (run_dir / "environment.json").write_text(json.dumps(env, indent=2))
    write_tables(run_dir, config, results, folds, methods, env["machine"])
    return run_dir


def write_tables(run_dir: Path, config: ExperimentConfig, results: list[dict], folds: list[int], methods,
                 machine: str) -> dict:
    from experiments import tables
    from experiments.paper_numbers import paper_dataset

    per_fold = pd.DataFrame(results)
    verification_rows = []
    for method in methods:
        frame = tables.verification_by_fold(run_dir, method.name, folds)
        if len(frame):
            verification_rows.append(frame.assign(method=method.name))
    if verification_rows:
        per_fold = per_fold.merge(pd.concat(verification_rows), on=["method", "fold"], how="left")
    per_fold.to_csv(run_dir / "per_fold.csv", index=False)
    column = paper_dataset(config.dataset, config.expression_protocol)
    built = tables.build_tables(per_fold, {m.name: m for m in methods}, column)
    for name, frame in built.items():
        frame.to_csv(run_dir / f"{name}.csv", index=False)
    data_note = ("embedded synthfaces dataset (synthetic, NOT CK+ or Oulu-CASIA)" if config.dataset == "synthfaces"
                 else f"real {config.dataset} data from {config.data_root or config.data_dir}")
    header = (f"## dynamic_mtl results: `{config.name}` profile, run `{run_dir.name}`\n\n"
              f"Data: {data_note}. Machine: {machine}. Folds: {len(folds)} "
              f"({config.epochs} epochs, {config.backbone} at {config.image_size} px, batch {config.batch_size}). "
              f"Mean ± std over folds. The paper column is the published number for {column}, not a target.")
    report = tables.markdown(built, header, column)
    (run_dir / "results.md").write_text(report + "\n")
    print(report, flush=True)
    return built


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run the cross-validated protocol of a config (Tables 2-4, Figures 2, 7)")
    p.add_argument("--config", default="quick", help="YAML/JSON config, or a bundled name: quick, paper, "
                                                      "figure2, figure7, tiny (default quick)")
    p.add_argument("--dataset", choices=("synthfaces", "ckplus", "oulu"), help="override the dataset")
    p.add_argument("--data-dir", help="prepared dataset directory (override)")
    p.add_argument("--data-root", help="raw CK+/Oulu-CASIA tree, prepared into --data-dir when needed")
    p.add_argument("--profile", help="alias of --config")
    p.add_argument("--expression-protocol", choices=("dataset", "oulu6"),
                   help="oulu6: Oulu-CASIA's 6 expression classes (Table 4) on any dataset")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), help="tf.distribute strategy")
    p.add_argument("--pretrained", help="pretrained verification checkpoint (.keras), or 'none'")
    p.add_argument("--run-id", help="results/<dataset>/<run-id> (default: a timestamp)")
    p.add_argument("--results-dir", help="results root (default results)")
    p.add_argument("--epochs", type=int, help="override epochs")
    p.add_argument("--folds", type=int, nargs="+", help="only these test folds")
    p.add_argument("--methods", nargs="+", help="only these methods (see experiments/methods.py)")
    p.add_argument("--jit-compile", choices=("true", "false", "auto"),
                   help="XLA for the train step; auto: on for one GPU, off on CPU and under strategies")
    p.add_argument("--steps-per-execution", type=int, help="train steps per tf.function call (8-32 on GPUs)")
    p.add_argument("--mixed-precision", action="store_true", default=None,
                   help="mixed_float16 network (GPUs); weight unit, losses and L3 stay float32")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same --run-id")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    config = ExperimentConfig.load(args.profile or args.config)
    changes = dict(dataset=args.dataset, data_dir=args.data_dir, data_root=args.data_root, strategy=args.strategy,
                   pretrained_checkpoint=args.pretrained, run_id=args.run_id, results_dir=args.results_dir,
                   epochs=args.epochs, folds=args.folds, methods=args.methods,
                   expression_protocol=args.expression_protocol, steps_per_execution=args.steps_per_execution,
                   mixed_precision=args.mixed_precision,
                   jit_compile={"true": True, "false": False, "auto": "auto", None: None}[args.jit_compile])
    if args.dataset and args.dataset != "synthfaces" and not args.data_dir:
        changes["data_dir"] = f"data/{args.dataset}"
    config = config.override(**changes)
    if args.resume and not config.run_id:
        raise SystemExit("--resume needs --run-id of the run to continue")
    try:
        run_dir = run_experiment(config, resume=args.resume, progress=not args.quiet)
    except CheckpointMismatch as err:
        print(f"dynamic-mtl run: error: {err}", file=sys.stderr)
        return 2
    print(f"[dynamic-mtl] results written to {run_dir}")
    return 0
