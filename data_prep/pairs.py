"""Verification pairs per test fold, built as the authors did (docs/fidelity.md).

For every neutral reference (first frame of a sequence) of a test-fold subject and every
"required" expression r (happy, surprise), one probe (a peak frame) is drawn for each of 4 kinds:

* ``same_required``  : same subject, expression r;
* ``same_other``     : same subject, a peak of another (non-neutral) expression;
* ``diff_required``  : another test-fold subject, expression r;
* ``diff_other``     : one random other test-fold subject, a peak of a non-r expression.

Pairs only use the test fold's subjects. Differences from the authors' script (documented in
docs/data.md): kinds are emitted in balanced same/diff couples (a ``same_required`` pair only
together with a ``diff_required`` one, likewise for ``other``), so positives = negatives; the
probe is always a peak frame (their script could pair a reference with itself); the draw is
seeded per fold (stream ``data_prep.seeds.EXPRESSION_PAIRS``), not Python's ``random``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from . import seeds
from .labels import REQUIRED_EXPRESSIONS

PAIR_COLUMNS = ("fold", "path_a", "path_b", "issame", "kind", "required", "subject_a", "subject_b", "expression_b")
KINDS = ("same_required", "diff_required", "same_other", "diff_other")


def make_pairs(
    manifest: pd.DataFrame,
    folds: pd.DataFrame,
    seed: int = 0,
    required: tuple[str, ...] = REQUIRED_EXPRESSIONS,
    balanced: bool = True,
) -> pd.DataFrame:
    """Build the pairs of every fold. ``manifest`` needs path, subject, sequence, frame, role, expression_name.

    ``path_a`` is the neutral reference, ``path_b`` the peak probe. With ``balanced=False`` each kind
    is emitted whenever its candidates exist (closer to the authors' script, not balanced).
    """
    need = {"path", "subject", "sequence", "frame", "role", "expression_name"}
    if not need <= set(manifest.columns):
        raise ValueError(f"manifest lacks columns {sorted(need - set(manifest.columns))}")
    fmap = dict(zip(folds["subject"].astype(str), folds["fold"].astype(int)))
    m = manifest.assign(subject=manifest["subject"].astype(str))
    missing = sorted(set(m["subject"]) - set(fmap))
    if missing:
        raise ValueError(f"subjects without a fold: {missing[:10]}")
    m = m.assign(fold=m["subject"].map(fmap)).sort_values(["subject", "sequence", "frame", "path"], kind="stable")
    out: list[dict] = []
    for fold in sorted(set(fmap.values())):
        fm = m[m["fold"] == fold]
        rng = seeds.EXPRESSION_PAIRS.rng(seed, fold)
        refs = fm[fm["role"] == "neutral"]
        peaks = fm[(fm["role"] == "peak") & (fm["expression_name"] != "neutral")]
        by_subj = {s: g for s, g in peaks.groupby("subject", sort=True)}
        subjects = sorted(by_subj)

        def pick(df: pd.DataFrame, rng=rng) -> pd.Series:
            return df.iloc[int(rng.integers(len(df)))]

        for ref in refs.itertuples(index=False):
            own = by_subj.get(ref.subject, peaks.iloc[0:0])
            others = peaks[peaks["subject"] != ref.subject]
            for r in required:
                same_req = own[own["expression_name"] == r]
                diff_req = others[others["expression_name"] == r]
                same_oth = own[own["expression_name"] != r]
                cand_subj = [s for s in subjects if s != ref.subject and (by_subj[s]["expression_name"] != r).any()]
                found = {}
                if len(same_req):
                    found["same_required"] = pick(same_req)
                if len(diff_req):
                    found["diff_required"] = pick(diff_req)
                if len(same_oth):
                    found["same_other"] = pick(same_oth)
                if cand_subj:
                    s = cand_subj[int(rng.integers(len(cand_subj)))]
                    g = by_subj[s]
                    found["diff_other"] = pick(g[g["expression_name"] != r])
                for same_k, diff_k in (("same_required", "diff_required"), ("same_other", "diff_other")):
                    ks = [same_k, diff_k] if (not balanced or (same_k in found and diff_k in found)) else []
                    for k in ks:
                        if k not in found:
                            continue
                        p = found[k]
                        out.append(
                            {
                                "fold": fold,
                                "path_a": ref.path,
                                "path_b": p["path"],
                                "issame": k.startswith("same"),
                                "kind": k,
                                "required": r,
                                "subject_a": ref.subject,
                                "subject_b": p["subject"],
                                "expression_b": p["expression_name"],
                            }
                        )
    df = pd.DataFrame(out, columns=list(PAIR_COLUMNS))
    df["issame"] = df["issame"].astype(bool)
    return df


def write_pairs(pairs: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a pairs CSV (columns :data:`PAIR_COLUMNS`; paths relative to the prepared dataset dir)."""
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs table lacks columns {missing}")
    pairs[list(PAIR_COLUMNS)].to_csv(path, index=False)


def read_pairs(path: str | os.PathLike) -> pd.DataFrame:
    """Read a pairs CSV written by :func:`write_pairs` (issame as bool, fold as int, subjects as str)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} not found (run `dynamic-mtl prepare ...` first)")
    df = pd.read_csv(
        path,
        dtype={
            "subject_a": str,
            "subject_b": str,
            "path_a": str,
            "path_b": str,
            "kind": str,
            "required": str,
            "expression_b": str,
        },
    )
    missing = [c for c in ("fold", "path_a", "path_b", "issame") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; found {list(df.columns)}")
    if df["issame"].dtype != bool:
        df["issame"] = df["issame"].astype(str).str.lower().map({"true": True, "false": False, "1": True, "0": False})
        if df["issame"].isna().any():
            raise ValueError(f"{path}: issame must be True/False")
        df["issame"] = df["issame"].astype(bool)
    df["fold"] = df["fold"].astype("int64")
    return df


def pair_counts(pairs: pd.DataFrame) -> dict:
    """Counts for summary.json: total, by kind, by fold, positives/negatives."""
    return {
        "total": int(len(pairs)),
        "positive": int(pairs["issame"].sum()),
        "negative": int((~pairs["issame"]).sum()),
        "by_kind": {k: int(v) for k, v in pairs["kind"].value_counts().sort_index().items()},
        "by_fold": {int(k): int(v) for k, v in pairs["fold"].value_counts().sort_index().items()},
    }
