"""``dynamic-mtl ttc``: the task-transfer-connection experiments of Fang et al. 2017 (docs/ttc.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.ttc.datasets import DATASETS as REGISTRY
from experiments.cli import add_quiet_argument, add_run_id_argument
from experiments.ttc.config import DATASETS
from experiments.typed_config import add_print_config_argument, add_seed_argument, add_settings_argument

#: datasets read from --data-root (the others are generated or embedded)
RAW_DATASETS = tuple(name for name, entry in REGISTRY.items() if entry.needs_data_root)


def check_args(args: argparse.Namespace) -> None:
    """Paths and the run folder, checked before any work; raises ``ValueError``."""
    if args.data_root is not None:
        if args.dataset not in RAW_DATASETS:
            raise ValueError(f"--data-root is only read for {' and '.join(RAW_DATASETS)}; {args.dataset} is embedded")
        try:
            REGISTRY[args.dataset].check_root(args.data_root)
        except FileNotFoundError as err:
            raise ValueError(str(err).split(". ")[0]) from None
    if Path(args.out).is_file():
        raise ValueError(f"--out {args.out} is a file, not a results folder")
    if args.run_id:
        from experiments.rundir import RunError, holds_files, run_directory

        try:
            run_dir = run_directory(args.out, args.dataset, args.run_id)
        except RunError as err:
            raise ValueError(str(err)) from None
        if holds_files(run_dir):
            raise ValueError(f"run directory {run_dir} exists and is not empty; choose another --run-id")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ttc",
        help="Fang et al. 2017: ST / MT / DMT (TTC) / cross-stitch, task removal, incremental addition",
        description="Tables 3-6 and Figures 4-6 of Fang et al. 2017 on one dataset. Results go to "
        "OUT/<dataset>/<run-id>/ (tables as CSV + Markdown, alphas, figures, config, environment).",
    )
    p.add_argument(
        "--dataset",
        required=True,
        choices=DATASETS,
        help="synthattrs and digits are embedded (no download); celeba and cifar10 need --data-root",
    )
    p.add_argument("--data-root", default=None, help="CelebA folder or folder holding cifar-10-batches-py/")
    p.add_argument("--out", default="results/ttc", help="results root (default: results/ttc)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (seconds to a minute), not a result")
    add_run_id_argument(p, "OUT", "the time and the profile, e.g. 20250101-120000-default")
    add_seed_argument(p, "the data split, initialisation and batches")
    p.add_argument("--steps-per-task", type=int, default=None, help="training turns per task")
    p.add_argument("--width", type=float, default=None, help="multiplier of the paper's filter counts")
    p.add_argument("--size", type=int, default=None, help="input side in pixels")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of the weights")
    p.add_argument("--alpha-lr", type=float, default=None, help="Adam learning rate of the betas / stitch weights")
    p.add_argument("--no-table3", action="store_true", help="skip the Table 3 two-task experiment")
    p.add_argument(
        "--capacity-control",
        action="store_true",
        help="also train each single-task net T x longer (as many steps as a T-task model)",
    )
    p.add_argument(
        "--shared-bn-statistics",
        action="store_true",
        help="one batch-norm statistics copy for all tasks (default: one per task)",
    )
    add_quiet_argument(p, "--no-progress")
    add_settings_argument(
        p,
        "override any field of the resolved config (typed, e.g. --set batch_size=64 "
        "tasks=[3.8,5.9,4.6]); --print-config lists the fields",
    )
    add_print_config_argument(p)
    p.set_defaults(func=main)


def _with_settings(config, args: argparse.Namespace):
    """``config`` with ``--set KEY=VALUE`` applied, typed by TTCConfig's fields and validated again."""
    from experiments.ttc.config import apply_settings

    return apply_settings(config, args.settings, quick=args.quick)


def main(args: argparse.Namespace) -> int:
    from experiments.ttc.config import resolve_config

    try:
        check_args(args)
        config = resolve_config(
            args.dataset,
            args.out,
            quick=args.quick,
            data_root=args.data_root,
            run_id=args.run_id,
            seed=args.seed,
            steps_per_task=args.steps_per_task,
            width=args.width,
            size=args.size,
            lr=args.lr,
            alpha_lr=args.alpha_lr,
            table3_groups=[] if args.no_table3 else None,
            capacity_control=True if args.capacity_control else None,
            per_task_statistics=False if args.shared_bn_statistics else None,
        )
        if args.settings:
            config = _with_settings(config, args)
    except ValueError as err:
        print(f"dynamic-mtl ttc: error: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    from experiments.rundir import RunError
    from experiments.ttc.runner import run

    try:
        run_dir = run(config, progress=not args.quiet)
    except (FileNotFoundError, FileExistsError, KeyError, RunError) as err:
        print(f"dynamic-mtl ttc: error: {err}", file=sys.stderr)
        return 2
    print((run_dir / "summary.md").read_text())
    print(f"results: {run_dir}")
    return 0
