"""experiments.face_expression.tables: the primary verification number uses thresholds from each model's own
validation pairs; the LFW-style cross-fold numbers sit beside it; Table 2 / Markdown show both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynamic_mtl import verification as v
from experiments.face_expression import tables
from experiments.face_expression.methods import parse_method


def _pairs(rng, n, shift=0.0):
    s = rng.random(n) < 0.5
    d = np.where(s, rng.normal(0.8, 0.3, n), rng.normal(1.6, 0.3, n)).clip(0.0, 3.99) + shift
    return d, s


def _save(run_dir, method, fold, test, validation):
    out = run_dir / "per_fold"
    out.mkdir(parents=True, exist_ok=True)
    (td, ts), (vd, vs) = test, validation
    np.savez(
        out / f"{method}_fold{fold}_distances.npz",
        test_distances=td,
        test_issame=ts,
        test_kind=np.array(["x"] * len(td)),
        validation_distances=vd,
        validation_issame=vs,
    )


def _write_run(run_dir, seed=0, val_shift=None, test_shift=None, empty_validation=()):
    rng = np.random.default_rng(seed)
    data = {}
    for fold in range(3):
        test = _pairs(rng, 120, (test_shift or {}).get(fold, 0.0))
        validation = _pairs(rng, 80, (val_shift or {}).get(fold, 0.0))
        if fold in empty_validation:
            validation = (np.zeros(0), np.zeros(0, bool))
        _save(run_dir, "m", fold, test, validation)
        data[fold] = (test, validation)
    return data


def test_primary_threshold_comes_from_the_folds_own_validation_pairs(tmp_path):
    data = _write_run(tmp_path)
    frame = tables.verification_by_fold(tmp_path, "m", [0, 1, 2]).set_index("fold")
    assert (frame["threshold_protocol"] == tables.PROTOCOL_VALIDATION).all()
    for fold, ((td, ts), (vd, vs)) in data.items():
        expected = v.evaluate_fold(vd, vs, td, ts)
        row = frame.loc[fold]
        assert row["verification_accuracy"] == expected["accuracy"]
        assert row["val_at_far"] == expected["val"]
        assert row["verification_auc"] == expected["auc"]
        assert row["threshold"] == v.best_threshold(vd, vs)
        assert row["val_threshold"] == v.far_threshold(vd, vs)
    # the LFW-style cross-fold numbers sit beside the primary ones
    d = np.concatenate([data[k][0][0] for k in range(3)])
    s = np.concatenate([data[k][0][1] for k in range(3)])
    cross = v.evaluate_folds(d, s, np.repeat(np.arange(3), 120)).per_fold
    np.testing.assert_array_equal(frame["verification_accuracy_crossfold"], [r["accuracy"] for r in cross])
    np.testing.assert_array_equal(frame["val_at_far_crossfold"], [r["val"] for r in cross])


def test_other_folds_do_not_move_a_folds_primary_number(tmp_path):
    _write_run(tmp_path / "a")
    base = tables.verification_by_fold(tmp_path / "a", "m", [0, 1, 2])
    # other folds' test AND validation distances shifted: fold 0's primary numbers stay, its cross-fold one moves
    _write_run(tmp_path / "b", test_shift={1: 0.6, 2: 0.6}, val_shift={1: 0.6, 2: 0.6})
    moved = tables.verification_by_fold(tmp_path / "b", "m", [0, 1, 2])
    a, b = base.set_index("fold").loc[0], moved.set_index("fold").loc[0]
    for col in ("verification_accuracy", "val_at_far", "verification_auc", "threshold", "val_threshold"):
        assert a[col] == b[col], col
    assert a["verification_accuracy_crossfold"] != b["verification_accuracy_crossfold"]


def test_a_folds_own_validation_pairs_move_its_primary_number(tmp_path):
    _write_run(tmp_path / "a")
    base = tables.verification_by_fold(tmp_path / "a", "m", [0, 1, 2])
    _write_run(tmp_path / "b", val_shift={0: 0.6})
    moved = tables.verification_by_fold(tmp_path / "b", "m", [0, 1, 2])
    a, b = base.set_index("fold"), moved.set_index("fold")
    assert a.loc[0, "threshold"] != b.loc[0, "threshold"]
    assert a.loc[0, "verification_accuracy"] != b.loc[0, "verification_accuracy"]
    # the other folds, and every cross-fold number (test pairs only), are unchanged
    pd.testing.assert_frame_equal(a.loc[[1, 2]], b.loc[[1, 2]])
    pd.testing.assert_series_equal(a["verification_accuracy_crossfold"], b["verification_accuracy_crossfold"])


def test_fold_without_validation_pairs_falls_back_to_cross_fold(tmp_path):
    _write_run(tmp_path, empty_validation=(1,))
    frame = tables.verification_by_fold(tmp_path, "m", [0, 1, 2]).set_index("fold")
    assert frame.loc[1, "threshold_protocol"] == tables.PROTOCOL_CROSSFOLD
    assert frame.loc[1, "verification_accuracy"] == frame.loc[1, "verification_accuracy_crossfold"]
    assert frame.loc[1, "val_at_far"] == frame.loc[1, "val_at_far_crossfold"]
    assert (frame.loc[[0, 2], "threshold_protocol"] == tables.PROTOCOL_VALIDATION).all()


def test_single_fold_and_missing_pairs(tmp_path):
    data = _write_run(tmp_path)
    one = tables.verification_by_fold(tmp_path, "m", [2])
    (td, ts), (vd, vs) = data[2]
    assert len(one) == 1 and one["verification_accuracy"].item() == v.evaluate_fold(vd, vs, td, ts)["accuracy"]
    assert one["threshold_protocol"].item() == tables.PROTOCOL_VALIDATION
    assert one[["verification_accuracy_crossfold", "val_at_far_crossfold"]].isna().all(axis=None)
    # a single fold without validation pairs has no threshold source at all
    _write_run(tmp_path / "e", empty_validation=(0, 1, 2))
    assert tables.verification_by_fold(tmp_path / "e", "m", [0]).empty
    assert tables.verification_by_fold(tmp_path / "missing", "m", [0, 1]).empty
    # folds without test pairs are skipped
    _save(tmp_path / "z", "m", 0, (np.zeros(0), np.zeros(0, bool)), data[0][1])
    assert tables.verification_by_fold(tmp_path / "z", "m", [0]).empty


def test_table2_and_markdown_show_primary_and_cross_fold(tmp_path):
    _write_run(tmp_path)
    specs = {name: parse_method(name) for name in ("static", "dynamic")}
    frames = []
    for name in specs:
        frame = tables.verification_by_fold(tmp_path, "m", [0, 1, 2]).assign(method=name)
        frames.append(frame.assign(expression_accuracy=0.5))
    per_fold = pd.concat(frames, ignore_index=True)
    built = tables.build_tables(per_fold, specs, "ckplus")
    t2 = built["table2"].set_index("method")
    assert t2.loc["dynamic", "accuracy"] == pytest.approx(per_fold["verification_accuracy"].iloc[:3].mean() * 100)
    assert t2.loc["dynamic", "accuracy_crossfold"] == pytest.approx(
        per_fold["verification_accuracy_crossfold"].iloc[:3].mean() * 100
    )
    assert t2.loc["dynamic", "val_at_far_1e-3"] == pytest.approx(per_fold["val_at_far"].iloc[:3].mean() * 100)
    md = tables.markdown_tables(built, "## header", "ckplus")
    assert "| Method | Ours | VAL@FAR=1e-3 | AUC | Cross-fold | Paper |" in md
    row = next(line for line in md.splitlines() if line.startswith(f"| {specs['dynamic'].label} |"))
    r = t2.loc["dynamic"]
    assert row == (
        f"| {r['label']} | {r['accuracy']:.2f} ± {r['std']:.2f} | {r['val_at_far_1e-3']:.2f} ± "
        f"{r['val_std']:.2f} | {r['auc']:.2f} | {r['accuracy_crossfold']:.2f} ± "
        f"{r['crossfold_std']:.2f} | {r['paper']:.2f} |"
    )
    # a table2 without the cross-fold column (e.g. an older CSV) still renders
    old = {"table2": built["table2"].drop(columns=["accuracy_crossfold", "crossfold_std"])}
    assert "| - |" in tables.markdown_tables(old, "h", "ckplus")
