"""The ``dynamic-mtl`` command line.

Each sub-command lives in its own module, which exposes ``register(subparsers)``.
``register`` adds a parser and sets ``func`` (called with the parsed namespace,
returning an exit code) as its default.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute sub-commands, in help order. A module missing from a
# checkout (optional part) is skipped rather than breaking the whole CLI.
COMMAND_MODULES = (
    "data_prep.cli",          # prepare synthfaces|ckplus|oulu
    "experiments.run",        # run --config
    "experiments.report",     # report RUN_DIR
    "experiments.study",      # study --config --seeds (claim-by-claim verdicts)
    "experiments.pretrain",   # pretrain, eval-lfw
    "experiments.ttc.cli",    # ttc
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamic-mtl",
        description="Dynamic multi-task learning for face recognition with facial expression.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # only tolerate the module itself being absent
            if err.name and name.startswith(err.name):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
