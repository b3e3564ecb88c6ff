"""The ``dynamic-mtl`` command line.

Each sub-command lives in its own module, which exposes ``register(subparsers)``.
``register`` adds a parser and sets ``func`` (called with the parsed namespace,
returning an exit code) as its default.

Only the module of the command being run is imported, so ``dynamic-mtl --help`` (and every
``COMMAND --help``) stays fast and never imports TensorFlow. Bad input is one line on stderr and exit
status 2: argparse errors, and :class:`~experiments.typed_config.ConfigError` raised by a command's
checks before it does any work.

Options that several commands share are defined once: the config options in experiments/typed_config.py
(``add_config_argument``, ``add_settings_argument``, ``add_print_config_argument``, ``add_seed_argument``),
the run options here (:func:`add_run_id_argument`, :func:`add_quiet_argument`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from experiments.typed_config import ConfigError

#: command -> (module that registers it, one-line help for the command list), in help order. A module
#: missing from a checkout (optional part) is skipped rather than breaking the whole CLI.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("data_prep.cli", "prepare a dataset (aligned crops, manifest, folds, pairs)"),
    "run": (
        "experiments.face_expression.run",
        "run the cross-validated protocol of a config (Tables 2-4, Figures 2, 7)",
    ),
    "report": ("experiments.face_expression.report", "table the results of a run directory (also a partial run)"),
    "study": ("experiments.face_expression.study", "run a config over several seeds and write claim-by-claim verdicts"),
    "pretrain": (
        "experiments.pretrain",
        "pretrain the single-task face network (trunk + branch 1) on identity folders",
    ),
    "eval-lfw": ("experiments.pretrain", "10-fold verification on an LFW-format pairs.txt"),
    "synthfaces-identities": (
        "experiments.pretrain",
        "generate the embedded large-identity pretraining set + held-out pairs.txt",
    ),
    "ttc": (
        "experiments.ttc.cli",
        "Fang et al. 2017: ST / MT / DMT (TTC) / cross-stitch, task removal, incremental addition",
    ),
}


def cli_prefix() -> str:
    """How to start ``dynamic-mtl`` from here, for the commands a run prints (its resume command): the name
    when it is on PATH, else the environment's own script (``.venv/bin/dynamic-mtl`` after ``make``, whose
    venv is not activated), else ``python -m experiments.cli``."""
    import shutil
    from pathlib import Path

    if shutil.which("dynamic-mtl"):
        return "dynamic-mtl"
    script = Path(sys.executable).with_name("dynamic-mtl")
    if script.is_file():
        try:
            return str(script.relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return f"{sys.executable} -m experiments.cli"


def add_run_id_argument(parser, root: str, default: str) -> None:
    """``--run-id``: the name of the run directory ``<root>/<dataset>/<run-id>`` (checked by
    :func:`experiments.rundir.check_run_id`; None when not given: ``default`` says what is used)."""
    parser.add_argument(
        "--run-id", help=f"{root}/<dataset>/<run-id> (default: {default}); letters, digits, '.', '_', '-'"
    )


def add_quiet_argument(parser, flag: str = "--quiet") -> None:
    """``--quiet`` (``args.quiet``): no progress bars; ``flag`` names it where a command spells it otherwise."""
    parser.add_argument(flag, dest="quiet", action="store_true", help="no progress bars")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``dynamic-mtl run: error: ... (see dynamic-mtl run --help)``."""

    def error(self, message: str):  # noqa: D102 (argparse's API)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def version() -> str:
    """The installed distribution's version (``unknown`` when run from a checkout that is not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        return _version("dynamic_mtl")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _register(subparsers, module_name: str) -> bool:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:  # only tolerate the module itself being absent
        if err.name and module_name.startswith(err.name):
            return False
        raise
    module.register(subparsers)
    return True


def build_parser(command: str | None = None) -> ArgumentParser:
    """The parser of every command (``command=None``), or of ``command`` alone: only its module is
    imported and the other commands get a placeholder that lists them in ``--help`` (``""``: none)."""
    parser = ArgumentParser(
        prog="dynamic-mtl",
        description="Dynamic multi-task learning for face recognition with facial expression (Ming et al. 2019) "
        "and task transfer connections (Fang et al. 2017). `dynamic-mtl COMMAND --help` for each.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    subparsers.required = True
    registered: set[str] = set()
    for name, (module_name, help_text) in COMMANDS.items():
        if name in registered:
            continue
        if command is None or (command in COMMANDS and COMMANDS[command][0] == module_name):
            if _register(subparsers, module_name):
                registered.update(subparsers.choices)
            continue
        subparsers.add_parser(name, help=help_text, add_help=False)
        registered.add(name)
    return parser


def _command_of(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dynamic-mtl`` and ``python -m experiments.cli``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    parser = build_parser(command if command in COMMANDS else "")
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"dynamic-mtl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
