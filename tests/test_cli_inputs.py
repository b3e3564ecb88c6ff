"""Every sub-command's wrong input: exit status 2, one line on stderr naming the problem, no traceback and
no new file or directory. ``--help`` never imports TensorFlow; ``--print-config`` and ``--set`` resolve a
typed config without any work; the wheel holds the library only."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.cli import COMMANDS, build_parser, main
from experiments.face_expression.config import ExperimentConfig
from experiments.face_expression.methods import METHODS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory with the files the wrong inputs point at."""
    (tmp_path / "bad_syntax.yaml").write_text("name: x\nmethods: [static, dynamic\nepochs: 2\n")
    (tmp_path / "wrong_type.yaml").write_text("name: x\nepochs: two\n")
    (tmp_path / "unknown_key.yaml").write_text("name: x\nepochz: 3\n")
    (tmp_path / "not_a_mapping.yaml").write_text("- epochs\n- 2\n")
    (tmp_path / "pretrain_ok.yaml").write_text("data: raw\nout: run\naligned: true\nbackbone_options: {width: 16}\n")
    (tmp_path / "pretrain_range.yaml").write_text("data: raw\nout: run\naligned: true\nepochs: 0\n")
    (tmp_path / "pretrain_no_data.yaml").write_text("data: nope\nout: run\naligned: true\n")
    (tmp_path / "pretrain_types.yaml").write_text("data: raw\nout: run\naligned: yes please\n")
    (tmp_path / "raw").mkdir()
    (tmp_path / "cluttered").mkdir()
    (tmp_path / "cluttered" / "photo.png").write_bytes(b"not a dataset")
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "manifest.csv").write_text("path,subject\n")
    (prepared / "folds.csv").write_text("subject,fold\nS1,0\nS2,1\nS3,2\n")
    (prepared / "summary.json").write_text(json.dumps({"dataset": "synthfaces"}))
    done = tmp_path / "results" / "synthfaces" / "old" / "per_fold"
    done.mkdir(parents=True)
    (done / "static_fold0.json").write_text("{}")
    (tmp_path / "pairs.txt").write_text("10 2\n")
    (tmp_path / "a_file").write_text("x")
    ttc_run = tmp_path / "ttc" / "digits" / "taken"
    ttc_run.mkdir(parents=True)
    (ttc_run / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


TINY = ["run", "--config", "tiny"]
CASES = {
    # run: config files
    "bad YAML names file and line": (["run", "--config", "bad_syntax.yaml"], "bad_syntax.yaml:3: invalid YAML"),
    "wrong type names field, file and line": (
        ["run", "--config", "wrong_type.yaml"],
        "wrong_type.yaml:2: epochs must be an integer, got 'two'",
    ),
    "unknown key suggests the right one": (
        ["run", "--config", "unknown_key.yaml"],
        "unknown config keys: epochz (did you mean epochs?)",
    ),
    "config that is not a mapping": (["run", "--config", "not_a_mapping.yaml"], "must be a mapping"),
    "missing config lists the bundled ones": (["run", "--config", "nope"], "bundled configs: "),
    # run: values
    "unknown optimizer": ([*TINY, "--set", "network_optimizer.name=adamm"], "unknown optimizer 'adamm'"),
    "unknown backbone": ([*TINY, "--set", "backbone=resnet"], "unknown backbone 'resnet'"),
    "image too small for the backbone": ([*TINY, "--set", "image_size=8"], "image_size must be >= 16"),
    "unknown standardisation": ([*TINY, "--set", "standardize=zca"], "standardize must be one of"),
    "--set type": ([*TINY, "--set", "epochs=two"], "epochs must be an integer, got 'two'"),
    "--set unknown key": ([*TINY, "--set", "epochz=2"], "did you mean epochs?"),
    "--set nested unknown key": ([*TINY, "--set", "weight_optimizer.lr=1"], "valid keys: weight_optimizer.decay_"),
    "--set without =": ([*TINY, "--set", "epochs"], "--set expects KEY=VALUE"),
    "unknown method": ([*TINY, "--methods", "dynamik"], "unknown method 'dynamik'"),
    "epochs out of range": ([*TINY, "--epochs", "0"], "epochs must be >= 1"),
    "argparse type": ([*TINY, "--epochs", "x"], "invalid int value: 'x'"),
    "argparse choice": ([*TINY, "--jit-compile", "maybe"], "invalid choice: 'maybe'"),
    # run: paths and data
    "missing --pretrained": ([*TINY, "--pretrained", "missing.keras"], "--pretrained missing.keras: no such"),
    "--data-root without --dataset": ([*TINY, "--data-root", "raw"], "needs --dataset ckplus or --dataset oulu"),
    "--data-root that does not exist": (
        [*TINY, "--dataset", "ckplus", "--data-root", "nope"],
        "--data-root nope: no such directory",
    ),
    "real dataset, nothing to prepare it from": ([*TINY, "--dataset", "ckplus"], "no prepared ckplus dataset"),
    "--data-dir with no parent": ([*TINY, "--data-dir", "no/such/data"], "parent directory no/such does not exist"),
    "--data-dir that is not a dataset": ([*TINY, "--data-dir", "cluttered"], "holds files but no prepared dataset"),
    "--data-dir of another dataset": (
        [*TINY, "--data-dir", "prepared", "--dataset", "ckplus"],
        "holds a prepared synthfaces dataset",
    ),
    "folds not in folds.csv": ([*TINY, "--data-dir", "prepared", "--folds", "7"], "folds [7] are not in"),
    "folds synthfaces will not have": ([*TINY, "--folds", "12"], "synthfaces is generated with folds 0-9"),
    "fewer identities than folds": ([*TINY, "--set", "synthfaces_identities=5"], "cannot fill 10"),
    "--resume without --run-id": ([*TINY, "--resume"], "--resume needs --run-id"),
    "finished run without --resume": ([*TINY, "--run-id", "old"], "already holds results: pass --resume"),
    # pretrain, eval-lfw, synthfaces-identities
    "pretrain: missing data": (["pretrain", "--data", "nope", "--out", "run", "--aligned"], "--data nope: no such"),
    "pretrain: image size": (
        ["pretrain", "--data", "raw", "--out", "run", "--aligned", "--image-size", "8"],
        "--image-size must be >= 16 for small_cnn",
    ),
    "pretrain: crop fraction": (
        ["pretrain", "--data", "raw", "--out", "run", "--aligned", "--crop-fraction", "1.5"],
        "--crop-fraction must lie in (0, 1]",
    ),
    "pretrain: decay epochs": (
        ["pretrain", "--data", "raw", "--out", "run", "--aligned", "--lr-decay-epochs", "a"],
        "comma-separated epochs",
    ),
    "pretrain: --out is a file": (["pretrain", "--data", "raw", "--out", "a_file", "--aligned"], "is a file"),
    "pretrain: epochs": (
        ["pretrain", "--data", "raw", "--out", "run", "--aligned", "--epochs", "0"],
        "--epochs must be >= 1",
    ),
    "pretrain: neither --aligned nor --align": (["pretrain", "--data", "raw", "--out", "run"], "--aligned / --align"),
    "pretrain: no --data": (["pretrain", "--out", "run", "--aligned"], "--data is required"),
    "pretrain: --width": (
        ["pretrain", "--config", "pretrain_ok.yaml", "--width", "0"],
        "--width must be an integer >= 1",
    ),
    # pretrain: config files and --set
    "pretrain: bad YAML": (["pretrain", "--config", "bad_syntax.yaml"], "bad_syntax.yaml:3: invalid YAML"),
    "pretrain: unknown key": (["pretrain", "--config", "unknown_key.yaml"], "epochz (did you mean epochs?)"),
    "pretrain: config not a mapping": (["pretrain", "--config", "not_a_mapping.yaml"], "must be a mapping"),
    "pretrain: missing config": (
        ["pretrain", "--config", "nope"],
        "bundled pretrain configs: paper, study, synthfaces",
    ),
    "pretrain: wrong type in the config": (
        ["pretrain", "--config", "pretrain_types.yaml"],
        "pretrain_types.yaml:3: aligned must be true or false, got 'yes please'",
    ),
    "pretrain: value out of range in the config": (
        ["pretrain", "--config", "pretrain_range.yaml", "--print-config"],
        "pretrain_range.yaml:4: epochs must be >= 1, got 0",
    ),
    "pretrain: the config's data does not exist": (
        ["pretrain", "--config", "pretrain_no_data.yaml"],
        "pretrain_no_data.yaml:1: data nope: no such directory",
    ),
    "pretrain: the bundled config before its data exists": (
        ["pretrain", "--config", "synthfaces"],
        "data data/synthfaces_identities/train: no such directory",
    ),
    "pretrain: --set type": (
        ["pretrain", "--config", "pretrain_ok.yaml", "--set", "epochs=two"],
        "--set epochs: epochs",
    ),
    "pretrain: --set unknown key": (["pretrain", "--config", "pretrain_ok.yaml", "--set", "lr=1"], "valid keys: "),
    "pretrain: --set out of range": (
        ["pretrain", "--config", "pretrain_ok.yaml", "--set", "dropout_rate=1.5"],
        "--set: dropout_rate must lie in [0, 1), got 1.5",
    ),
    "pretrain: --set a field without a flag": (
        ["pretrain", "--config", "pretrain_ok.yaml", "--set", "global_clipnorm=0"],
        "--set: global_clipnorm must be > 0 or null",
    ),
    "eval-lfw: missing pairs": (
        ["eval-lfw", "--pairs", "nope.txt", "--images", "raw", "--model", "a_file"],
        "--pairs nope.txt: no such file",
    ),
    "eval-lfw: missing images": (
        ["eval-lfw", "--pairs", "pairs.txt", "--images", "nope", "--model", "a_file"],
        "--images nope: no such directory",
    ),
    "eval-lfw: missing model": (
        ["eval-lfw", "--pairs", "pairs.txt", "--images", "raw", "--model", "m.keras"],
        "--model m.keras: no such",
    ),
    "synthfaces-identities: too few": (
        ["synthfaces-identities", "--out", "ids", "--num-identities", "1"],
        "--num-identities must be >= 2",
    ),
    # prepare
    "prepare: identities vs folds": (
        ["prepare", "synthfaces", "--out", "d", "--num-identities", "5"],
        "cannot fill --num-folds 10",
    ),
    "prepare: sequences": (["prepare", "synthfaces", "--out", "d", "--sequences", "9"], "--sequences must lie in 1-7"),
    "prepare: ckplus root": (["prepare", "ckplus", "--root", "nope", "--out", "d"], "--root nope: no such directory"),
    "prepare: oulu root": (["prepare", "oulu", "--root", "nope", "--out", "d"], "--root nope: no such directory"),
    "prepare: confidence": (
        ["prepare", "ckplus", "--root", "raw", "--out", "d", "--min-confidence", "2"],
        "--min-confidence must lie in [0, 1]",
    ),
    "prepare: --out is the raw root": (["prepare", "ckplus", "--root", "raw", "--out", "raw"], "must not be"),
    # ttc
    "ttc: --data-root for an embedded dataset": (
        ["ttc", "--dataset", "digits", "--data-root", "raw"],
        "--data-root is only read for celeba and cifar10",
    ),
    "ttc: celeba without --data-root": (["ttc", "--dataset", "celeba"], "--data-root is required for celeba"),
    "ttc: not a CIFAR-10 root": (["ttc", "--dataset", "cifar10", "--data-root", "raw"], "no CIFAR-10 python batches"),
    "ttc: steps": (["ttc", "--dataset", "digits", "--steps-per-task", "0"], "steps_per_task must be >= 1"),
    "ttc: run folder taken": (
        ["ttc", "--dataset", "digits", "--out", "ttc", "--run-id", "taken"],
        "exists and is not empty",
    ),
    "ttc: --set type": (["ttc", "--dataset", "digits", "--set", "batch_size=x"], "batch_size must be an integer"),
    "ttc: --set unknown key": (["ttc", "--dataset", "digits", "--set", "stepz=3"], "unknown config keys: stepz"),
    "ttc: --set dataset": (["ttc", "--dataset", "digits", "--set", "dataset=celeba"], "use --dataset and --out"),
    "study: wrong type in the config": (
        ["study", "--config", "wrong_type.yaml", "--seeds", "0", "1"],
        "wrong_type.yaml:2: epochs must be an integer",
    ),
    # top level
    "unknown command": (["runn"], "invalid choice: 'runn'"),
}


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse
        return stop.code


@pytest.mark.parametrize("case", sorted(CASES))
def test_wrong_input_is_one_line_exit_2_and_creates_nothing(case, workdir, capsys):
    argv, needle = CASES[case]
    before = _tree(workdir)
    code = _exit_code(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and needle in lines[0], err
    assert lines[0].startswith("dynamic-mtl"), err
    assert _tree(workdir) == before


def test_a_real_process_prints_no_traceback(workdir):
    """The same path through ``python -m experiments.cli``: stderr is the one line, nothing else."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "run", "--config", "wrong_type.yaml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "dynamic-mtl run: error: wrong_type.yaml:2: epochs must be an integer, got 'two'\n"


_HELP_PROBE = """
import json, sys
from experiments.cli import main
seen = {}
for argv in (["--help"], ["--version"], ["run", "--help"], ["study", "--help"], ["prepare", "--help"],
             ["prepare", "ckplus", "--help"], ["pretrain", "--help"], ["eval-lfw", "--help"], ["ttc", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
    seen[" ".join(argv)] = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(json.dumps(seen))
"""


def test_help_and_version_do_not_import_tensorflow(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(seen) == 9 and all(mods == [] for mods in seen.values()), seen
    assert "dynamic-mtl" in proc.stdout and list(tmp_path.iterdir()) == []


def test_run_help_lists_every_method_and_the_new_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for name in [*METHODS, "static@W", "static_sweep", "--seed", "--set", "--print-config", "tiny", "quick"]:
        assert name in text, name


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("dynamic-mtl ")


def test_command_table_matches_the_registered_commands():
    """The lazily listed commands are exactly those the modules register (a renamed command fails here)."""
    parser = build_parser()
    registered = next(a for a in parser._actions if a.dest == "command").choices
    assert sorted(registered) == sorted(COMMANDS)


def test_options_the_commands_share_have_one_definition():
    """--config, --print-config, --seed, --run-id and --quiet are registered by one helper each
    (experiments/typed_config.py, experiments/cli.py): the same type, destination and wording everywhere."""
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices

    def option(command, flag):
        return next(a for a in commands[command]._actions if flag in a.option_strings)

    assert len({option(c, "--print-config").help for c in ("run", "pretrain", "ttc")}) == 1
    for command in ("run", "pretrain", "ttc"):
        seed = option(command, "--seed")
        assert seed.type is int and seed.default is None and seed.help.startswith("seed of ")
    for command in ("run", "study", "pretrain"):
        assert option(command, "--config").help.startswith("YAML/JSON config file, or a bundled name: ")
    for command in ("run", "ttc"):
        assert option(command, "--run-id").help.endswith("letters, digits, '.', '_', '-'")
    for command, flag in (("run", "--quiet"), ("study", "--quiet"), ("ttc", "--no-progress")):
        assert (option(command, flag).dest, option(command, flag).help) == ("quiet", "no progress bars")


def test_print_config_resolves_seed_and_typed_settings_without_work(workdir, capsys):
    before = _tree(workdir)
    code = main(
        [
            "run",
            "--config",
            "tiny",
            "--seed",
            "7",
            "--epochs",
            "3",
            "--print-config",
            "--set",
            "network_optimizer.learning_rate=1e-3",
            "backbone_options.width=8",
            "folds=[0, 1]",
            "weight_optimizer.options.epsilon=1e-7",
            "data_root=null",
            "name=123",
        ]
    )
    assert code == 0 and _tree(workdir) == before
    printed = yaml.safe_load(capsys.readouterr().out)
    config = ExperimentConfig.from_dict(printed)
    assert (config.seed, config.epochs, config.folds, config.name) == (7, 3, [0, 1], "123")
    assert config.network_optimizer.learning_rate == 1e-3 and config.backbone_options == {"width": 8}
    assert config.weight_optimizer.options["epsilon"] == 1e-7 and config.data_root is None
    # the rest is the bundled config, untouched
    tiny = ExperimentConfig.load("tiny")
    assert config.methods == tiny.methods and config.image_size == tiny.image_size


def test_ttc_print_config_applies_typed_settings(workdir, capsys):
    before = _tree(workdir)
    assert (
        main(
            [
                "ttc",
                "--dataset",
                "digits",
                "--quick",
                "--seed",
                "4",
                "--print-config",
                "--set",
                "batch_size=8",
                "tasks=[3.8, 5.9, 4.6]",
                "lr=1e-3",
            ]
        )
        == 0
    )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["seed"], printed["batch_size"], printed["lr"]) == (4, 8, 1e-3)
    assert printed["tasks"] == ["3.8", "5.9", "4.6"] and printed["profile"] == "quick"
    assert _tree(workdir) == before


def test_bundled_configs_survive_the_typed_loader():
    for path in sorted((REPO / "experiments" / "configs").glob("*.yaml")):
        config = ExperimentConfig.load(path)
        assert ExperimentConfig.from_dict(config.to_dict()) == config, path.name


def test_wheel_holds_the_library_only():
    """setup.cfg installs dynamic_mtl alone (no generic top-level experiments / data_prep); the console
    script's target exists in the checkout that `pip install -e` puts on sys.path."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    include = cfg["options.packages.find"]["include"].split()
    assert include == ["dynamic_mtl", "dynamic_mtl.*"]
    assert cfg["options"]["package_dir"].split() == ["=."]
    script = cfg["options.entry_points"]["console_scripts"].strip()
    assert script == "dynamic-mtl = experiments.cli:main" and callable(main)
    assert cfg["metadata"]["license"] == "MIT" and "MIT License" in (REPO / "LICENSE").read_text()
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["license"] == "MIT" and len(citation["references"]) == 2


_BACKEND_PROBE = """
import os, keras
before = dict(os.environ)
real = keras.backend.backend
keras.backend.backend = lambda: "jax"
try:
    import dynamic_mtl
except ImportError as err:
    print("REFUSED:", err)
keras.backend.backend = real
import dynamic_mtl
print("ENV_UNCHANGED:", dict(os.environ) == before)
"""


@pytest.mark.slow
def test_library_checks_the_backend_and_sets_no_environment_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", _BACKEND_PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "REFUSED: dynamic_mtl needs Keras's TensorFlow backend, but Keras is using 'jax'" in proc.stdout
    assert "KERAS_BACKEND=tensorflow" in proc.stdout and "ENV_UNCHANGED: True" in proc.stdout


@pytest.mark.slow
def test_static_name_lists_match_the_library():
    """The CLI validates without TensorFlow from static lists; they must agree with the library."""
    import keras

    from data_prep.pipeline import STANDARDIZATIONS
    from dynamic_mtl.backbones import BACKBONES
    from experiments.face_expression import config

    assert config.STANDARDIZATIONS == STANDARDIZATIONS
    assert {k: b.min_image_size for k, b in BACKBONES.items()} == config.BACKBONE_MIN_IMAGE_SIZE
    for name in config.OPTIMIZERS:
        for spelling in (name, name.lower()):
            assert keras.optimizers.get({"class_name": spelling, "config": {"learning_rate": 0.1}}) is not None


def test_programmatic_overrides_accept_paths_and_numpy_numbers(tmp_path):
    import numpy as np

    config = ExperimentConfig.load("tiny").override(
        data_dir=tmp_path / "d", folds=[np.int64(1)], dropout_rate=np.float32(0.25)
    )
    assert config.data_dir == str(tmp_path / "d") and config.folds == [1] and type(config.folds[0]) is int
    assert config.dropout_rate == 0.25 and type(config.dropout_rate) is float
    with pytest.raises(ValueError, match="mixed_precision must be true or false"):
        ExperimentConfig.load("tiny").override(mixed_precision="yes")


def test_set_descends_into_an_optional_section():
    """`--set finetune_optimizer.learning_rate=...` changes the rate of a section typed `OptimizerConfig | None`
    and keeps its other values; where the section is null it starts from the section's defaults."""
    from experiments.typed_config import ConfigError, set_dotted

    data = ExperimentConfig.load("paper").to_dict()
    set_dotted(data, ExperimentConfig, "finetune_optimizer.learning_rate=3e-3")
    tuned, paper = (
        ExperimentConfig.from_dict(data).finetune_optimizer,
        ExperimentConfig.load("paper").finetune_optimizer,
    )
    assert tuned.learning_rate == 3e-3 and (tuned.name, tuned.options) == (paper.name, paper.options)
    data = ExperimentConfig.load("tiny").to_dict()
    assert data["finetune_optimizer"] is None
    set_dotted(data, ExperimentConfig, "finetune_optimizer.learning_rate=3e-3")
    assert ExperimentConfig.from_dict(data).finetune_optimizer.learning_rate == 3e-3
    with pytest.raises(ConfigError, match="not a mapping with key 'x'"):
        set_dotted(data, ExperimentConfig, "epochs.x=1")
