"""The real-data path: the paper profile's settings, the checkpoint / profile check, the Makefile's PRETRAINED=,
the stand-in raw trees in the CK+ / Oulu-CASIA / CASIA-WebFace layouts, and (slow) the whole rehearsal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from experiments.face_expression.checkpoint_check import (
    CheckpointMismatch,
    check_checkpoint,
    check_pretrained,
    mismatches,
)
from experiments.face_expression.config import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ the paper profile
def test_paper_profile_takes_the_papers_rate_with_the_authors_momentum_and_clipping():
    """The paper's lr 0.1 / momentum 0.99 diverges; the profile keeps the paper's lr 0.1, network, image size,
    batch and decay by 10, takes momentum and clipping from the authors' published command, and fine-tunes
    the rows that start pretrained at 0.01 (docs/fidelity.md row 7)."""
    c = ExperimentConfig.load("paper")
    net, finetune = c.network_optimizer, c.finetune_optimizer
    assert (c.backbone, c.image_size, c.batch_size, c.dropout_rate) == ("inception_resnet_v1_reduced", 160, 90, 0.5)
    assert (net.name, net.learning_rate, finetune.name, finetune.learning_rate) == ("RMSprop", 0.1, "RMSprop", 0.01)
    for opt in (net, finetune):
        assert opt.options == {"rho": 0.9, "momentum": 0.9, "epsilon": 1.0, "global_clipnorm": 5.0}
        assert opt.decay_epochs and all(b > a for a, b in zip(opt.decay_epochs, opt.decay_epochs[1:]))
    literal = ExperimentConfig.load("paper_literal").network_optimizer
    assert (literal.learning_rate, literal.options["momentum"]) == (0.1, 0.99)
    assert "global_clipnorm" not in literal.options


# ------------------------------------------------------------------ checkpoint / profile check
def _fake_checkpoint(tmp_path: Path, input_size: int = 48, **sidecar) -> Path:
    """A ``.keras`` archive holding only config.json (enough for the check, which never loads weights)."""
    path = tmp_path / "ckpt.keras"
    config = {
        "class_name": "Functional",
        "config": {
            "layers": [{"class_name": "InputLayer", "config": {"batch_shape": [None, input_size, input_size, 3]}}]
        },
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    if sidecar:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def _sidecar_of_pretraining(**changes) -> dict:
    """The sidecar `dynamic-mtl pretrain` writes for the paper network (its own writer, not a copy)."""
    from experiments.pretraining.train import PretrainConfig, network_metadata

    cfg = PretrainConfig(
        **{"data": "d", "out": "o", "backbone": "inception_resnet_v1_reduced", "image_size": 160, **changes}
    )
    return network_metadata(cfg, num_identities=10, epochs_trained=1)


def test_pretraining_sidecar_fits_the_paper_profile(tmp_path):
    ckpt = _fake_checkpoint(tmp_path, 160, **_sidecar_of_pretraining(dropout_rate=0.5))
    report = check_checkpoint(ckpt, ExperimentConfig.load("paper"))
    assert report["warning"] is None
    assert {"backbone", "image_size", "standardize", "embedding_size", "crop_fraction"} <= set(report["checked"])


@pytest.mark.parametrize(
    "changes, named",
    [
        (dict(image_size=96), "image_size 96 (checkpoint) vs 160 (profile)"),
        (dict(standardize="unit"), "standardize 'unit' (checkpoint) vs 'prewhiten' (profile)"),
        (dict(embedding_size=64), "embedding_size 64 (checkpoint) vs 128 (profile)"),
        (dict(crop_fraction=1.0), "crop_fraction 1.0 (checkpoint)"),
    ],
)
def test_each_preprocessing_or_shape_difference_is_named(changes, named):
    problems = mismatches(_sidecar_of_pretraining(**changes), ExperimentConfig.load("paper"))
    assert len(problems) == 1 and problems[0].startswith(named)


def test_without_sidecar_the_archive_input_size_is_checked(tmp_path):
    ckpt = _fake_checkpoint(tmp_path, 48)
    with pytest.raises(CheckpointMismatch, match=r"image_size 48 \(checkpoint input\) vs 160"):
        check_checkpoint(ckpt, ExperimentConfig.load("paper"))
    report = check_checkpoint(ckpt, ExperimentConfig.load("quick"))
    assert report["checked"] == ["image_size"] and "not checked" in report["warning"]


def test_check_pretrained_follows_the_profile_setting(tmp_path):
    assert check_pretrained(ExperimentConfig.load("paper")) is None  # no checkpoint: nothing to check
    missing = ExperimentConfig.load("paper").override(pretrained_checkpoint=str(tmp_path / "nope.keras"))
    with pytest.raises(CheckpointMismatch, match="not found"):
        check_pretrained(missing)


def test_run_refuses_a_wrong_checkpoint_in_one_line_before_any_work(tmp_path, capsys):
    """`make reproduce-table2 PROFILE=paper PRETRAINED=<the quick profile's small_cnn checkpoint>`."""
    from experiments.cli import main

    sidecar = _sidecar_of_pretraining()
    sidecar.update(backbone="small_cnn", backbone_options={"width": 16}, image_size=48)
    ckpt = _fake_checkpoint(tmp_path, 48, **sidecar)
    data_dir, results = tmp_path / "data" / "ckplus", tmp_path / "results"
    (tmp_path / "raw").mkdir()
    rc = main(
        [
            "run",
            "--config",
            "paper",
            "--dataset",
            "ckplus",
            "--data-root",
            str(tmp_path / "raw"),
            "--data-dir",
            str(data_dir),
            "--results-dir",
            str(results),
            "--pretrained",
            str(ckpt),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "backbone 'small_cnn' (checkpoint) vs 'inception_resnet_v1_reduced' (profile)" in err
    assert "image_size 48 (checkpoint) vs 160 (profile)" in err and "'paper' profile" in err
    assert not data_dir.exists() and not results.exists()


# ------------------------------------------------------------------ Makefile
def _make_n(*args: str) -> str:
    out = subprocess.run(
        ["make", "-n", "-o", "venv", "--no-print-directory", *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        check=True,
    )
    return out.stdout


@pytest.mark.parametrize(
    "target, extra",
    [("reproduce-table2", ""), ("reproduce-table3", ""), ("reproduce-table4", "--expression-protocol oulu6")],
)
def test_make_passes_the_pretrained_checkpoint(target, extra):
    out = _make_n(target, "DATASET=ckplus", "DATA_ROOT=/data/CK+", "PROFILE=paper", "PRETRAINED=/ck/face.keras")
    line = next(x for x in out.splitlines() if "experiments.cli run" in x)
    assert "--config paper" in line and '--pretrained "/ck/face.keras"' in line and '--data-root "/data/CK+"' in line
    assert extra in line
    assert "--pretrained" not in _make_n(target)


# ------------------------------------------------------------------ stand-in raw trees
def test_rehearsal_trees_have_the_real_layouts(tmp_path):
    import cv2

    from data_prep.ckplus import read_ckplus
    from data_prep.identity_folders import scan_identity_folders
    from data_prep.oulu import read_oulu
    from data_prep.rehearsal import CKPLUS_FRAME, OULU_FRAME, RehearsalConfig, write_all

    cfg = RehearsalConfig(
        ckplus_subjects=3,
        ckplus_sequences=1,
        oulu_subjects=3,
        frames=4,
        webface_identities=2,
        webface_images=2,
        num_folds=1,
        image_size=80,
    )
    written = write_all(tmp_path, cfg, methods=["dynamic"])
    ck = read_ckplus(tmp_path / "raw" / "CK+")
    assert len(ck) == 3 * 1 * 4 and not ck.attrs.get("skipped")
    assert cv2.imread(ck["raw_path"].iloc[0]).shape[:2] == CKPLUS_FRAME
    oulu = read_oulu(tmp_path / "raw" / "Oulu-CASIA")
    assert len(oulu) == 3 * 6 * 4 and not oulu.attrs.get("skipped")
    assert (oulu["expression"] >= 0).sum() == 3 * 6 * 3  # neutral first frames: no class
    assert cv2.imread(oulu["raw_path"].iloc[0]).shape[:2] == OULU_FRAME
    assert scan_identity_folders(tmp_path / "raw" / "webface").num_identities == 2
    profile = ExperimentConfig.load(written["profile"])
    paper = ExperimentConfig.load("paper")
    assert (profile.folds, profile.epochs, profile.image_size, profile.methods) == ([0], 1, 80, ["dynamic"])
    assert profile.network_optimizer == paper.network_optimizer and profile.backbone == paper.backbone
    assert profile.finetune_optimizer == paper.finetune_optimizer
    assert json.loads((tmp_path / "rehearsal.json").read_text())["ckplus"]["images"] == 12


def test_rehearsal_config_refuses_folds_without_pairs():
    from data_prep.rehearsal import RehearsalConfig

    with pytest.raises(ValueError, match=r"ckplus_subjects must be >= 3 x num_folds \(12\)"):
        RehearsalConfig(ckplus_subjects=8, num_folds=4)


# ------------------------------------------------------------------ the whole flow (slow)
@pytest.mark.slow
def test_rehearsal_of_the_real_flow_through_make(tmp_path):
    """Raw trees -> `prepare ckplus|oulu` (real MTCNN) -> `pretrain --align` (paper network) -> `make
    reproduce-table2 DATASET=ckplus PRETRAINED=... PROFILE=<paper, 1 fold, 1 epoch>` and reproduce-table4 on Oulu."""
    out = tmp_path / "rehearsal"
    args = (
        "--ckplus-subjects 8 --ckplus-sequences 2 --oulu-subjects 8 --frames 4 --webface-identities 4 "
        "--webface-images 4 --num-folds 2 --image-size 80 --batch-size 8 "
        "--methods pretrained dynamic"  # a row that only reads the checkpoint and one that trains from it
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [
            "make",
            "-o",
            "venv",
            "--no-print-directory",
            "rehearse-real-flow",
            f"REHEARSAL_DIR={out}",
            f"REHEARSAL_ARGS={args}",
            f"PY={sys.executable}",
            "REHEARSAL_PRETRAIN_ARGS=--epochs 1 --batch-size 8 --optimizer rmsprop --learning-rate 1e-4",
        ],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = out / "checkpoints" / "face.keras"
    assert ckpt.is_file() and json.loads(ckpt.with_suffix(".json").read_text())["image_size"] == 80
    for dataset in ("ckplus", "oulu"):
        assert json.loads((out / "data" / dataset / "summary.json").read_text())["images"] > 0
        (run,) = [p.parent for p in (out / "results" / dataset).glob("*/per_fold.csv")]
        env_json = json.loads((run / "environment.json").read_text())
        assert env_json["pretrained_checkpoint"] == str(ckpt) and not env_json["skipped_methods"]
        import pandas as pd

        rows = pd.read_csv(run / "per_fold.csv")
        assert sorted(rows["method"]) == ["dynamic", "pretrained"]
    assert (out / "rehearsal.md").is_file() and "pretrained from" in (out / "rehearsal.md").read_text()


# ------------------------------------------------------------------ cost model arithmetic
def test_cost_model_multiplies_out_the_protocol():
    from benchmarks.cost_model import protocol_cost, wall_time

    cost = protocol_cost(train_gflop=6.0, forward_gflop=2.0, epochs=90, folds=10, trained_rows=11)["ckplus"]
    train, val, test = 1308 * 0.9 * 0.88, 1308 * 0.9 * 0.12, 130.8
    assert cost["train_images_per_fold"] == round(train) == 1036
    per = train * 90 * 6.0 + (val * 90 + test) * 2.0
    assert cost["gflop_per_row_and_fold"] == pytest.approx(per)
    assert cost["total_pflop"] == pytest.approx(per * 110 / 1e6)
    # 1 PFLOP at 50 % of 1 TFLOP/s = 2000 s; 4 devices at 100 % scaling: a quarter
    assert wall_time(1.0, 1.0, 0.5) == pytest.approx(2000 / 3600)
    assert wall_time(1.0, 1.0, 0.5, gpus=4) == pytest.approx(500 / 3600)
