"""`dynamic-mtl pretrain` / `eval-lfw` end to end on a tiny identity set, and resume == uninterrupted."""

from __future__ import annotations

import json
import os
import zipfile

import h5py
import numpy as np
import pandas as pd
import pytest

from experiments.cli import main

TINY = ["--image-size", "24", "--batch-size", "8", "--progress", "none", "--seed", "3"]


@pytest.fixture(scope="module")
def identity_set(tmp_path_factory):
    from data_prep.synthfaces_identities import IdentitySetConfig, generate_identity_set

    root = tmp_path_factory.mktemp("ids")
    cfg = IdentitySetConfig(
        num_identities=6,
        images_per_identity=4,
        heldout_identities=20,
        heldout_images_per_identity=3,
        image_size=32,
        pairs_per_half=2,
    )
    generate_identity_set(root, cfg, workers=1, progress=False)
    (root / "train" / "lonely").mkdir()
    (root / "train" / "synth_00001" / "synth_00001_0002.png").rename(root / "train" / "lonely" / "lonely_0001.png")
    (root / "train" / "synth_00002" / "synth_00002_0009.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


def _network_weights(path):
    """All weight arrays stored in a .keras file (model + optimizer), by h5 path."""
    out = {}
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw:
        import io

        with h5py.File(io.BytesIO(raw.read()), "r") as h5:
            h5.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.slow
def test_pretrain_reports_bad_files_then_eval_lfw(identity_set, tmp_path, capsys):
    out, export = tmp_path / "run", tmp_path / "ckpt" / "tiny.keras"
    assert (
        main(
            [
                "pretrain",
                "--data",
                str(identity_set / "train"),
                "--aligned",
                "--out",
                str(out),
                "--epochs",
                "1",
                "--export",
                str(export),
                *TINY,
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "rejected entries" in err and "too_few_images" in err and "unreadable" in err
    rejects = pd.read_csv(out / "data" / "rejects.csv")
    assert sorted(rejects["reason"]) == ["too_few_images", "unreadable"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identities"] == 6 and summary["images"] == 6 * 4 - 1 and summary["rejects"] == 2
    assert "cores" in summary["machine"]  # the machine its times were measured on
    assert export.is_file() and json.loads(export.with_suffix(".json").read_text())["image_size"] == 24
    assert (out / "tensorboard" / "train").is_dir() and (out / "checkpoints" / "epoch_001.keras").is_file()
    assert len(pd.read_csv(out / "history.csv")) == 1

    assert not (out / ".lock").exists()  # the run folder's lock is removed at the end

    # an existing run is not overwritten without --resume: one line, exit 2, the folder untouched
    files = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["pretrain", "--data", str(identity_set / "train"), "--aligned", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds a run (epoch 1 done)" in err and "--resume" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == files
    # the resolved config saved in the run folder is a config: --resume from it finds the run done
    record = json.loads((out / "config.json").read_text())
    assert record == summary["config"] and record["image_size"] == 24 and record["export"] == str(export)
    assert main(["pretrain", "--config", str(out / "config.json"), "--resume"]) == 0
    assert "all 1 epochs already done" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text()) == record

    assert (
        main(
            [
                "eval-lfw",
                "--pairs",
                str(identity_set / "pairs.txt"),
                "--images",
                str(identity_set / "heldout"),
                "--model",
                str(export),
                "--flip",
            ]
        )
        == 0
    )
    res = json.loads((export.parent / "tiny.eval_lfw_flip-concat.json").read_text())
    assert res["pairs"] == {
        "total": 40,
        "used": 40,
        "skipped_missing": 0,
        "problem_images": 0,
        "folds": 10,
        "pairs_per_half": 2,
    }
    m = res["metrics"]
    assert len(m["per_fold"]) == 10 and 0.0 <= m["accuracy_mean"] <= 1.0 and 0.0 <= m["auc"] <= 1.0
    assert (export.parent / "tiny.eval_lfw_flip-concat.md").read_text().count("| ") > 10
    assert len(pd.read_csv(export.parent / "tiny.eval_lfw_flip-concat.csv")) == 10

    # a pairs file naming missing images: a clear error listing them, or counted with --skip-missing
    text = (identity_set / "pairs.txt").read_text().splitlines()
    name = text[1].split("\t")[0]
    text[1] = f"{name}\t1\t9"
    bad = tmp_path / "bad_pairs.txt"
    bad.write_text("\n".join(text) + "\n")
    args = [
        "eval-lfw",
        "--pairs",
        str(bad),
        "--images",
        str(identity_set / "heldout"),
        "--model",
        str(export),
        "--out",
        str(tmp_path / "eval"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{name}/{name}_0009" in err and "1 image(s)" in err
    assert main(args + ["--skip-missing"]) == 0
    res = json.loads((tmp_path / "eval" / "tiny.eval_lfw.json").read_text())
    assert res["pairs"]["used"] == 39 and res["pairs"]["skipped_missing"] == 1


@pytest.mark.parametrize(
    "held, message",
    [
        ({"state.json": '{"epoch": 1}'}, "already holds a run (epoch 1 done)"),
        ({"notes.txt": ""}, "already holds files"),
    ],
)
def test_pretrain_into_a_folder_that_holds_files_is_refused_without_resume(held, message, tmp_path, capsys):
    """The rule of every run directory: without --resume, an --out that holds files is refused before any
    work (one line, exit 2) and left as it was, without a lock file."""
    (tmp_path / "ids").mkdir()
    out = tmp_path / "run"
    out.mkdir()
    for name, text in held.items():
        (out / name).write_text(text)
    assert main(["pretrain", "--data", str(tmp_path / "ids"), "--aligned", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert err.endswith("pass --resume to continue it, or choose another --out")
    assert sorted(p.name for p in out.iterdir()) == sorted(held)


def test_pretrain_into_a_locked_folder_exits_2_naming_the_holder_and_writes_nothing(tmp_path, capsys):
    from experiments.pretraining.config import PretrainConfig
    from experiments.pretraining.train import run_pretrain
    from experiments.rundir import RunError, run_lock

    (tmp_path / "ids").mkdir()
    out = tmp_path / "run"
    out.mkdir()
    with run_lock(out):
        code = main(["pretrain", "--data", str(tmp_path / "ids"), "--aligned", "--out", str(out), *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"pid {os.getpid()}" in err and str(out / ".lock") in err
    assert not any(out.iterdir())
    # run_pretrain checks inside the lock too (a folder filled after the command's checks)
    (out / "notes.txt").write_text("")
    with pytest.raises(RunError, match="already holds files"):
        run_pretrain(PretrainConfig(data=str(tmp_path / "ids"), out=str(out)))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_resume_matches_an_uninterrupted_run(identity_set, tmp_path, capsys):
    common = [
        "pretrain",
        "--data",
        str(identity_set / "train"),
        "--aligned",
        "--epochs",
        "2",
        "--dropout",
        "0.5",
        "--lr-decay-epochs",
        "1",
        *TINY,
    ]
    assert main(common + ["--out", str(tmp_path / "straight")]) == 0
    assert main(common + ["--out", str(tmp_path / "cut"), "--stop-after-epochs", "1"]) == 0  # "killed" after 1
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["epoch"] == 1
    assert main(common + ["--out", str(tmp_path / "cut"), "--learning-rate", "0.1", "--resume"]) == 2
    assert "learning_rate" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert "resume: epoch 1" in capsys.readouterr().out
    a = _network_weights(tmp_path / "straight" / "checkpoints" / "epoch_002.keras")
    b = _network_weights(tmp_path / "cut" / "checkpoints" / "epoch_002.keras")
    assert a.keys() == b.keys()
    assert any("optimizer" in k for k in a) and any("center" in k for k in a)
    for key in a:
        if "seed_generator" not in key:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    ha, hb = (pd.read_csv(tmp_path / d / "history.csv") for d in ("straight", "cut"))
    assert ha["epoch"].tolist() == hb["epoch"].tolist() == [1, 2]
    np.testing.assert_array_equal(ha["loss"].to_numpy(), hb["loss"].to_numpy())


@pytest.mark.slow
def test_mirrored_two_cpu_replicas_match_one_device(identity_set, tmp_path):
    """--strategy mirrored on 2 logical CPUs (sync batch norm, no dropout) = one device, up to round-off."""
    import os
    import subprocess
    import sys

    common = [
        "pretrain",
        "--data",
        str(identity_set / "train"),
        "--aligned",
        "--epochs",
        "2",
        "--dropout",
        "0",
        "--sync-batchnorm",
        *TINY,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.cli",
            *common,
            "--out",
            str(tmp_path / "mirrored"),
            "--strategy",
            "mirrored",
            "--logical-cpus",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((tmp_path / "mirrored" / "summary.json").read_text())["replicas"] == 2
    assert main(common + ["--out", str(tmp_path / "single")]) == 0
    a, b, start = (
        _network_weights(tmp_path / run / "checkpoints" / f"epoch_00{e}.keras")
        for run, e in (("single", 2), ("mirrored", 2), ("single", 1))
    )
    keys = [k for k in a if k.startswith(("layers/", "center_loss/"))]
    assert keys and a.keys() == b.keys()
    moved = np.sqrt(sum(float(np.sum((a[k] - start[k]) ** 2)) for k in keys))
    diff = np.sqrt(sum(float(np.sum((a[k] - b[k]) ** 2)) for k in keys))
    assert moved > 1e-3 and diff < 1e-3 * moved, (diff, moved)


def test_embedded_identity_set_layout_and_heldout_pairs(identity_set):
    """Pairs name only held-out identities, never a pretraining one; every named image exists."""
    from data_prep.lfw_pairs import read_pairs, resolve_pair_images

    train = {p.name for p in (identity_set / "train").iterdir()}
    heldout = {p.name for p in (identity_set / "heldout").iterdir()}
    assert len(heldout) == 20 and not train & heldout
    parsed = read_pairs(identity_set / "pairs.txt")
    names = set(parsed.pairs["name_a"]) | set(parsed.pairs["name_b"])
    assert names <= heldout
    _, missing = resolve_pair_images(parsed, identity_set / "heldout")
    assert missing == []
    summary = json.loads((identity_set / "summary.json").read_text())
    assert summary["config"]["seed"] == 1000 and summary["pairs"]["total"] == 40
