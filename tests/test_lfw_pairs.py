"""LFW pairs.txt: parsing (both line kinds, header, malformed lines), writing, generation, missing files,
and the 10-fold protocol (the threshold is never chosen on the test fold)."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.lfw_pairs import (
    MissingPairImagesError,
    PairsFormatError,
    generate_pairs,
    parse_pairs_text,
    read_pairs,
    resolve_pair_images,
    write_pairs,
)

TWO_FOLDS = """2\t2
Abel_Pacheco\t1\t4
Akhmed_Zakayev\t1\t3
Abdel_Madi_Shabneh\t1\tDean_Barker\t1
Abdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1
Zico\t2 3
Zoe_Ball\t1\t2
Yuri_Fedotov 1 Zico 3
Zach_Pillar\t1\tZoe_Ball\t2
"""


def test_parses_both_line_kinds_header_and_folds():
    parsed = parse_pairs_text(TWO_FOLDS)
    assert (parsed.num_folds, parsed.pairs_per_half, parsed.num_pairs) == (2, 2, 8)
    df = parsed.pairs
    assert df["fold"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert df["issame"].tolist() == [True, True, False, False] * 2
    same = df.iloc[0]
    assert (same.name_a, same.num_a, same.name_b, same.num_b, same.line) == ("Abel_Pacheco", 1, "Abel_Pacheco", 4, 2)
    diff = df.iloc[6]  # space-separated line
    assert (diff.name_a, diff.num_a, diff.name_b, diff.num_b) == ("Yuri_Fedotov", 1, "Zico", 3)


def test_one_number_header_is_one_fold():
    parsed = parse_pairs_text("1\nA\t1\t2\nA\t1\tB\t1\n")
    assert (parsed.num_folds, parsed.pairs_per_half) == (1, 1)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("Abel_Pacheco\t1\t4\n", "header"),
        ("1 1\nA 1 2\nA 1 B\n", "line 3.*integer"),  # 3 fields = same-identity line: "B" is no number
        ("1 1\nA 1 2\nA 1 B 1 extra\n", "line 3.*5 fields"),
        ("1 1\nA one 2\nA 1 B 1\n", "line 2.*integer"),
        ("1 1\nA 0 2\nA 1 B 1\n", "line 2.*>= 1"),
        ("1 1\nA 2 2\nA 1 B 1\n", "line 2.*itself"),
        ("1 1\nA 1 2\nA 1 A 2\n", "line 3.*names one identity twice"),
        ("2 1\nA 1 2\nA 1 B 1\n", "announces 2 fold.*has 2"),
        ("1 2\nA 1 2\nB 1 2\nC 1 D 1\nA 1 B 2\n", None),  # valid control
        ("1 2\nA 1 2\nB 1 2\nC 1 3\nA 1 B 2\n", "3 same-identity and 1 different"),
    ],
)
def test_malformed_files_raise_clear_errors(text, message):
    if message is None:
        parse_pairs_text(text)
        return
    with pytest.raises(PairsFormatError, match=message):
        parse_pairs_text(text)


def test_all_bad_lines_are_listed():
    text = "1 3\nA x 2\nB 1 2\nC 1 D\nA 1 B 1\nA 1 C 1\nC 1 B 1\n"
    with pytest.raises(PairsFormatError) as err:
        parse_pairs_text(text)
    assert "2 malformed line(s)" in str(err.value) and "line 2" in str(err.value) and "line 4" in str(err.value)


def test_generate_write_read_roundtrip_identity_disjoint_folds(tmp_path):
    images = {f"id_{i:03d}": list(range(1, 6)) for i in range(40)}
    pairs = generate_pairs(images, num_folds=10, pairs_per_half=5, seed=3)
    path = write_pairs(pairs, tmp_path / "pairs.txt")
    assert path.read_text().splitlines()[0] == "10\t5"
    back = read_pairs(path)
    cols = ["fold", "issame", "name_a", "num_a", "name_b", "num_b"]
    assert back.pairs[cols].reset_index(drop=True).equals(pairs.pairs[cols].reset_index(drop=True))
    df = back.pairs
    fold_of = {}
    for r in df.itertuples():
        for name in (r.name_a, r.name_b):
            assert fold_of.setdefault(name, r.fold) == r.fold, "an identity appears in two folds"
    assert (df.groupby("fold")["issame"].sum() == 5).all()
    keys = {(r.fold, tuple(sorted([(r.name_a, r.num_a), (r.name_b, r.num_b)]))) for r in df.itertuples()}
    assert len(keys) == len(df), "duplicate pairs"
    assert generate_pairs(images, 10, 5, seed=3).pairs.equals(pairs.pairs)


def test_resolve_accepts_png_and_lists_missing_files(tmp_path):
    for name, n, ext in [("A", 1, ".jpg"), ("A", 2, ".png"), ("B", 1, ".jpg")]:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}_{n:04d}{ext}").write_bytes(b"x")
    parsed = parse_pairs_text("1 1\nA 1 2\nA 1 C 7\n")
    df, missing = resolve_pair_images(parsed, tmp_path)
    assert df.loc[0, "path_b"].endswith("A/A_0002.png")
    assert missing == ["C/C_0007"]
    assert df.loc[1, "path_b"] == ""
    err = MissingPairImagesError(missing, tmp_path)
    assert "C/C_0007" in str(err) and "1 image(s)" in str(err)


def test_threshold_is_never_chosen_on_the_test_fold(tmp_path):
    """Fold 0 is separable only at a threshold in (2, 3]; folds 1-2 only in (0.2, 1]. Choosing fold 0's
    threshold on fold 0 itself would give it 100 %; the protocol must give 50 %."""
    from experiments.pretraining.lfw import lfw_metrics

    text = "3 2\n" + "".join(f"S{k}\t1\t2\nS{k}\t1\t3\nS{k}\t1\tT{k}\t1\nS{k}\t2\tT{k}\t1\n" for k in range(3))
    parsed = parse_pairs_text(text)
    dist = np.array([2.0, 2.0, 3.0, 3.0] + [0.2, 0.2, 1.0, 1.0] * 2)
    result = lfw_metrics(dist, parsed.pairs)
    fold0 = result.per_fold[0]
    assert fold0["fold"] == 0
    assert 0.2 < fold0["threshold"] <= 1.0  # chosen on folds 1-2
    assert fold0["accuracy"] == pytest.approx(0.5)  # would be 1.0 if chosen on fold 0
    assert result.per_fold[1]["accuracy"] == pytest.approx(1.0)
    assert result.accuracy_mean == pytest.approx((0.5 + 1.0 + 1.0) / 3)
