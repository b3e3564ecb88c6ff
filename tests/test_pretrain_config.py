"""``dynamic-mtl pretrain``'s typed config: the bundled configs, ``--config`` < flags < ``--set``,
``--print-config`` without work, and the run's ``config.json`` read back as a config."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.cli import main
from experiments.pretraining.config import PretrainConfig, bundled_configs

REPO = Path(__file__).resolve().parents[1]
#: what `make pretrain` / `make pretrain-study` passed as flags before they read the bundled configs
FORMER_MAKE_FLAGS = {
    "synthfaces": "--backbone small_cnn --width 16 --image-size 48 --batch-size 64 --epochs 8 --lr-decay-epochs 6",
    "study": "--backbone small_cnn --width 16 --image-size 32 --batch-size 64 --epochs 8 --lr-decay-epochs 6",
}


def _print_config(argv: list[str], capsys) -> dict:
    assert main(["pretrain", *argv, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _make_pretrain_argv(target: str) -> list[str]:
    """The `dynamic-mtl pretrain` arguments `make -n TARGET` prints (nothing is run)."""
    out = subprocess.run(
        ["make", "-n", "-B", "-o", "venv", "--no-print-directory", target, "PY=python", "STRATEGY=default"],
        cwd=REPO,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    line = next(x for x in out.replace("\\\n", " ").splitlines() if "experiments.cli pretrain" in x)
    argv = shlex.split(line)
    return argv[argv.index("experiments.cli") + 2 :]


@pytest.mark.parametrize("target, name", [("pretrain", "synthfaces"), ("pretrain-study", "study")])
def test_make_trains_what_its_former_flags_trained(target, name, tmp_path, monkeypatch, capsys):
    """`make pretrain(-study)` resolves to the same config with --config as with the flags it passed before."""
    argv = _make_pretrain_argv(target)
    assert argv[:2] == ["--config", name]
    out = "checkpoints/pretrained/synthfaces_small_cnn" + ("_32px" if name == "study" else "")
    former = ["--data", "data/synthfaces_identities/train", "--aligned", "--out", out, "--export", f"{out}.keras"]
    former += ["--strategy", "default", "--resume", *FORMER_MAKE_FLAGS[name].split()]
    monkeypatch.chdir(tmp_path)
    before = _print_config(former, capsys)
    assert _print_config(argv, capsys) == before
    assert list(tmp_path.iterdir()) == []
    # the file alone: the same, its own paths included
    assert PretrainConfig.load(name).to_dict() == before


def test_the_study_config_pretrains_the_network_the_study_loads():
    from experiments.face_expression.config import ExperimentConfig

    study, pretrain = ExperimentConfig.load("study"), PretrainConfig.load("study")
    assert study.pretrained_checkpoint == pretrain.export
    assert (study.backbone, study.backbone_options, study.image_size, study.embedding_size) == (
        pretrain.backbone,
        pretrain.backbone_options,
        pretrain.image_size,
        pretrain.embedding_size,
    )
    assert sorted(bundled_configs()) == ["paper", "study", "synthfaces"]


def test_the_paper_pretraining_fits_the_paper_profile_and_make_pretrain_paper_runs_it():
    """`make pretrain-paper` trains the network `run --config paper --pretrained` accepts (checked as the harness checks)."""
    from experiments.face_expression.checkpoint_check import CHECKED_FIELDS, mismatches
    from experiments.face_expression.config import ExperimentConfig
    from experiments.pretraining.train import network_metadata

    paper, pretrain = ExperimentConfig.load("paper"), PretrainConfig.load("paper")
    sidecar = network_metadata(pretrain, num_identities=1000, epochs_trained=pretrain.epochs)  # what the export writes
    assert set(CHECKED_FIELDS) <= set(sidecar) and mismatches(sidecar, paper) == []
    assert (pretrain.batch_size, pretrain.dropout_rate) == (paper.batch_size, paper.dropout_rate)
    argv = _make_pretrain_argv("pretrain-paper")
    assert argv[:2] == ["--config", "paper"]
    assert argv[argv.index("--export") + 1] == pretrain.export


def test_flags_override_the_config_and_set_overrides_both(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("mine.yaml").write_text(
        "data: ids\nout: run\naligned: false\nbackbone_options: {width: 8}\nepochs: 3\nseed: 4\ndropout_rate: 0.3\n"
    )
    got = _print_config(["--config", "mine.yaml"], capsys)
    assert (got["aligned"], got["epochs"], got["seed"], got["dropout_rate"]) == (False, 3, 4, 0.3)
    assert got["image_size"] == 48 and got["embedding_size"] == 128  # defaults resolved
    got = _print_config(
        ["--config", "mine.yaml", "--epochs", "5", "--dropout", "0.1", "--aligned", "--embedding-size", "0"], capsys
    )
    assert (got["aligned"], got["epochs"], got["seed"], got["dropout_rate"]) == (True, 5, 4, 0.1)
    assert got["embedding_size"] is None and got["backbone_options"] == {"width": 8}
    got = _print_config(
        [
            "--config",
            "mine.yaml",
            "--epochs",
            "5",
            "--width",
            "16",
            "--set",
            "epochs=6",
            "global_clipnorm=5",
            "lr_decay_epochs=[2, 4]",
            "center_update_rate=0.25",
        ],
        capsys,
    )
    assert (got["epochs"], got["global_clipnorm"], got["lr_decay_epochs"]) == (6, 5.0, [2, 4])
    assert got["center_update_rate"] == 0.25 and got["backbone_options"] == {"width": 16}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]


def test_the_printed_and_the_saved_config_read_back_as_configs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    printed = _print_config(["--config", "synthfaces", "--seed", "7", "--set", "align_margin=40"], capsys)
    Path("printed.yaml").write_text(yaml.safe_dump(printed))
    assert _print_config(["--config", "printed.yaml"], capsys) == printed
    record = PretrainConfig(**printed)
    record.save(tmp_path / "config.json")  # what a run writes into its folder
    assert json.loads((tmp_path / "config.json").read_text()) == printed
    assert PretrainConfig.load(tmp_path / "config.json") == record
    assert _print_config(["--config", "config.json"], capsys) == printed


def test_a_bad_saved_config_names_the_field_and_the_file(tmp_path):
    from experiments.typed_config import ConfigError

    (tmp_path / "config.json").write_text(json.dumps({"data": "d", "out": "o", "epochs": 0}))
    with pytest.raises(ConfigError, match=r"config\.json: epochs must be >= 1, got 0"):
        PretrainConfig.load(tmp_path / "config.json")
    (tmp_path / "config.json").write_text(json.dumps({"data": "d", "epochs": 2}))
    with pytest.raises(ConfigError, match="out is required"):
        PretrainConfig.load(tmp_path / "config.json")


def test_programmatic_configs_are_checked_and_resolved():
    cfg = PretrainConfig(data="d", out="o", backbone="inception_resnet_v1_reduced")
    assert cfg.image_size == 160
    with pytest.raises(ValueError, match="image_size must be >= 16 for small_cnn, got 8"):
        PretrainConfig(data="d", out="o", image_size=8)
    with pytest.raises(ValueError, match="apply to small_cnn only"):
        PretrainConfig(data="d", out="o", backbone="inception_resnet_v1_reduced", backbone_options={"width": 8})
    with pytest.raises(ValueError, match="lr_decay_epochs must be increasing"):
        PretrainConfig(data="d", out="o", lr_decay_epochs=[3, 2])


_NO_TF_PROBE = """
import sys
from experiments.cli import main
code = main(["pretrain", "--config", "synthfaces", "--print-config", "--set", "epochs=2"])
print("TF", sorted(m for m in ("tensorflow", "keras") if m in sys.modules), code)
"""


def test_print_config_imports_no_tensorflow(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TF_PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "TF [] 0"
    assert "epochs: 2" in proc.stdout and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_default_crop_fraction_is_the_pipeline_s():
    from data_prep.pipeline import DEFAULT_CROP_FRACTION
    from experiments.pretraining import config

    assert config.DEFAULT_CROP_FRACTION == DEFAULT_CROP_FRACTION
