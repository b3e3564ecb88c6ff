"""Subject-independent folds and verification pairs."""

from __future__ import annotations

import pandas as pd
import pytest

from data_prep.folds import assign_folds, read_folds, split_manifest, write_folds
from data_prep.pairs import KINDS, make_pairs, read_pairs, write_pairs

EXPRS = ["anger", "happy", "surprise", "sadness"]


def _manifest(n_subjects=20, exprs=EXPRS):
    rows = []
    for s in range(n_subjects):
        subj = f"S{s:03d}"
        for q, e in enumerate(exprs):
            seq = f"{q + 1:03d}"
            for f, role in ((1, "neutral"), (8, "peak"), (9, "peak"), (10, "peak")):
                rows.append(
                    {
                        "path": f"aligned/{subj}/{seq}/{subj}_{seq}_{f:08d}.png",
                        "subject": subj,
                        "sequence": seq,
                        "frame": f,
                        "role": role,
                        "expression_name": "neutral" if role == "neutral" else e,
                    }
                )
    return pd.DataFrame(rows)


def test_no_subject_in_two_folds_and_balanced_sizes():
    m = _manifest(23)
    folds = assign_folds(m["subject"], 10, seed=1)
    assert folds["subject"].is_unique
    assert set(folds["subject"]) == set(m["subject"])
    sizes = folds["fold"].value_counts()
    assert sorted(sizes.index) == list(range(10)) and sizes.max() - sizes.min() <= 1
    train, test = split_manifest(m, folds, 3)
    assert not set(train["subject"]) & set(test["subject"])
    assert len(train) + len(test) == len(m)


def test_folds_deterministic_and_order_independent():
    subs = [f"S{i:03d}" for i in range(40)]
    a = assign_folds(subs, 10, seed=7)
    b = assign_folds(list(reversed(subs)) + subs[:5], 10, seed=7)  # order and duplicates do not matter
    c = assign_folds(set(subs), 10, seed=7)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert not a["fold"].equals(assign_folds(subs, 10, seed=8)["fold"])
    with pytest.raises(ValueError, match="cannot split 3 subjects"):
        assign_folds(["a", "b", "c"], 10)


def test_folds_round_trip(tmp_path):
    f = assign_folds([f"{i:03d}" for i in range(12)], 4)  # numeric-looking ids stay strings
    write_folds(f, tmp_path / "folds.csv")
    pd.testing.assert_frame_equal(read_folds(tmp_path / "folds.csv"), f)
    pd.DataFrame({"subject": ["a", "a"], "fold": [0, 1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="several folds"):
        read_folds(tmp_path / "bad.csv")


def test_pairs_protocol():
    m = _manifest(20)
    folds = assign_folds(m["subject"], 10, seed=0)
    pairs = make_pairs(m, folds, seed=0)
    fmap = dict(zip(folds["subject"], folds["fold"]))
    # Only test-fold subjects, reference = neutral, probe = peak.
    assert (pairs["subject_a"].map(fmap) == pairs["fold"]).all()
    assert (pairs["subject_b"].map(fmap) == pairs["fold"]).all()
    role = dict(zip(m["path"], m["role"]))
    assert (pairs["path_a"].map(role) == "neutral").all() and (pairs["path_b"].map(role) == "peak").all()
    assert (pairs["issame"] == (pairs["subject_a"] == pairs["subject_b"])).all()
    # 4 kinds, balanced: every (reference, required) yields one pair of each kind here.
    counts = pairs["kind"].value_counts()
    assert set(counts.index) == set(KINDS) and counts.nunique() == 1
    assert counts.iloc[0] == 20 * 4 * 2  # 20 subjects x 4 references x 2 required expressions
    req = pairs[pairs["kind"].str.endswith("required")]
    assert (req["expression_b"] == req["required"]).all()
    oth = pairs[pairs["kind"].str.endswith("other")]
    assert (oth["expression_b"] != oth["required"]).all()
    pd.testing.assert_frame_equal(pairs, make_pairs(m.sample(frac=1, random_state=3), folds, seed=0))


def test_pairs_balanced_when_required_missing():
    m = _manifest(10, exprs=["anger", "sadness", "happy"])
    m = m[~((m["subject"] == "S000") & (m["expression_name"] == "happy"))]  # S000 has no happy peak
    pairs = make_pairs(m, assign_folds(m["subject"], 2, seed=0), seed=0)
    assert pairs["issame"].sum() == (~pairs["issame"]).sum()
    for _fold, g in pairs.groupby("fold"):
        assert g["issame"].sum() == (~g["issame"]).sum()


def test_pairs_round_trip(tmp_path):
    m = _manifest(6)
    pairs = make_pairs(m, assign_folds(m["subject"], 3), seed=2)
    write_pairs(pairs, tmp_path / "pairs.csv")
    back = read_pairs(tmp_path / "pairs.csv")
    pd.testing.assert_frame_equal(back, pairs, check_dtype=False)
    assert back["issame"].dtype == bool
    with pytest.raises(FileNotFoundError):
        read_pairs(tmp_path / "missing.csv")
