"""LFW ``pairs.txt``: parse, validate, resolve to files, write, and generate from identity folders.

The standard format (Huang et al. 2007, LFW "View 2")::

    10	300                    <- header: folds, pairs per half-fold
    Abel_Pacheco	1	4          <- same identity: name, image n1, image n2
    ...                        (300 same-identity lines, then)
    Abdel_Madi_Shabneh	1	Dean_Barker	1   <- different identity: name1, n1, name2, n2
    ...                        (300 different-identity lines; then the next fold)

Image ``n`` of ``name`` is ``name/name_%04d.jpg`` under the images folder; ``.png`` / ``.jpeg``
(any case) are accepted too. A one-number header (``1100``, as ``pairsDevTrain.txt``) is one fold.
Fold ``k`` is block ``k`` of ``2 * pairs_per_half`` lines, as in LFW. Parsing never guesses: a
malformed line, a wrong count or a fold without exactly ``pairs_per_half`` lines of each kind raises
:class:`PairsFormatError` naming the lines. Separators may be tabs or spaces.

This module imports neither TensorFlow nor OpenCV.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import seeds

PAIR_COLUMNS = ("fold", "issame", "name_a", "num_a", "name_b", "num_b", "line")
#: Extensions tried, in order, for ``name/name_0001.<ext>``.
DEFAULT_EXTENSIONS = (".jpg", ".png", ".jpeg", ".JPG", ".PNG", ".JPEG")


class PairsFormatError(ValueError):
    """A pairs file that does not follow the LFW format."""


class MissingPairImagesError(FileNotFoundError):
    """Pairs name images that do not exist under the images folder."""

    def __init__(self, missing: Sequence[str], images_dir: str | os.PathLike, report: str | None = None):
        self.missing = list(missing)
        shown = "\n  ".join(self.missing[:20])
        more = f"\n  ... and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
        where = f"\nFull list: {report}" if report else ""
        super().__init__(
            f"{len(self.missing)} image(s) named by the pairs file are missing under {images_dir} "
            f"(tried extensions {', '.join(DEFAULT_EXTENSIONS[:3])}):\n  {shown}{more}{where}\n"
            "Fix the images folder (name/name_0001.jpg layout) or pass --skip-missing to drop those "
            "pairs (they are counted in the results)."
        )


@dataclass
class LFWPairs:
    """A parsed pairs file: ``pairs`` has one row per pair (columns :data:`PAIR_COLUMNS`)."""

    num_folds: int
    pairs_per_half: int
    pairs: pd.DataFrame

    @property
    def num_pairs(self) -> int:
        return int(len(self.pairs))


def image_stem(name: str, num: int) -> str:
    """``name/name_0001`` (no extension), the LFW file name of image ``num`` of ``name``."""
    return f"{name}/{name}_{int(num):04d}"


def _positive_int(token: str, what: str, lineno: int, line: str) -> int:
    try:
        value = int(token)
    except ValueError:
        raise PairsFormatError(f"line {lineno}: {what} must be an integer, got {token!r} in {line!r}") from None
    if value < 1:
        raise PairsFormatError(f"line {lineno}: {what} must be >= 1, got {value} in {line!r}")
    return value


def parse_pairs_text(text: str, source: str = "<pairs>") -> LFWPairs:
    """Parse the content of a pairs file (see the module docstring)."""
    lines = text.splitlines()
    numbered = [(i + 1, ln.strip()) for i, ln in enumerate(lines)]
    numbered = [(i, ln) for i, ln in numbered if ln]
    if not numbered:
        raise PairsFormatError(f"{source}: empty pairs file")
    head_no, head = numbered[0]
    tokens = head.split()
    if len(tokens) not in (1, 2) or not all(t.isdigit() for t in tokens):
        raise PairsFormatError(
            f"{source}: line {head_no}: expected the header 'FOLDS PAIRS_PER_HALF' "
            f"(e.g. '10 300') or 'PAIRS_PER_HALF' (one fold), got {head!r}"
        )
    num_folds, per_half = (1, int(tokens[0])) if len(tokens) == 1 else (int(tokens[0]), int(tokens[1]))
    if num_folds < 1 or per_half < 1:
        raise PairsFormatError(f"{source}: line {head_no}: folds and pairs must be >= 1, got {head!r}")
    rows, errors = [], []
    for lineno, line in numbered[1:]:
        t = line.split()
        try:
            if len(t) == 3:
                a, b = (
                    _positive_int(t[1], "image number", lineno, line),
                    _positive_int(t[2], "image number", lineno, line),
                )
                if a == b:
                    raise PairsFormatError(f"line {lineno}: same-identity pair of one image with itself: {line!r}")
                rows.append((True, t[0], a, t[0], b, lineno))
            elif len(t) == 4:
                a, b = (
                    _positive_int(t[1], "image number", lineno, line),
                    _positive_int(t[3], "image number", lineno, line),
                )
                if t[0] == t[2]:
                    raise PairsFormatError(f"line {lineno}: different-identity line names one identity twice: {line!r}")
                rows.append((False, t[0], a, t[2], b, lineno))
            else:
                raise PairsFormatError(
                    f"line {lineno}: expected 'name n1 n2' (same identity) or "
                    f"'name1 n1 name2 n2' (different identities), got {len(t)} fields: {line!r}"
                )
        except PairsFormatError as err:
            errors.append(str(err))
    if errors:
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise PairsFormatError(f"{source}: {len(errors)} malformed line(s):\n  " + "\n  ".join(errors[:10]) + more)
    expected = num_folds * 2 * per_half
    if len(rows) != expected:
        raise PairsFormatError(
            f"{source}: header {head!r} announces {num_folds} fold(s) x 2 x {per_half} = "
            f"{expected} pairs, the file has {len(rows)}"
        )
    df = pd.DataFrame(rows, columns=["issame", "name_a", "num_a", "name_b", "num_b", "line"])
    df.insert(0, "fold", np.arange(len(df)) // (2 * per_half))
    bad = []
    for k, grp in df.groupby("fold"):
        n_same = int(grp["issame"].sum())
        if n_same != per_half:
            bad.append(
                f"fold {k} (lines {grp['line'].min()}-{grp['line'].max()}) has {n_same} same-identity and "
                f"{len(grp) - n_same} different-identity pairs, expected {per_half} of each"
            )
    if bad:
        raise PairsFormatError(f"{source}: " + "; ".join(bad))
    return LFWPairs(num_folds, per_half, df[list(PAIR_COLUMNS)])


def read_pairs(path: str | os.PathLike) -> LFWPairs:
    """Parse an LFW ``pairs.txt`` file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"pairs file not found: {p}")
    return parse_pairs_text(p.read_text(), source=str(p))


def write_pairs(pairs: LFWPairs, path: str | os.PathLike) -> Path:
    """Write ``pairs`` in the LFW format (tab-separated, header ``folds<TAB>pairs_per_half``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = [f"{pairs.num_folds}\t{pairs.pairs_per_half}"]
    df = pairs.pairs.sort_values(["fold", "issame"], ascending=[True, False], kind="stable")
    for r in df.itertuples(index=False):
        out.append(f"{r.name_a}\t{r.num_a}\t{r.num_b}" if r.issame else f"{r.name_a}\t{r.num_a}\t{r.name_b}\t{r.num_b}")
    p.write_text("\n".join(out) + "\n")
    return p


def resolve_pair_images(
    pairs: LFWPairs, images_dir: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS
) -> tuple[pd.DataFrame, list[str]]:
    """Find every pair image under ``images_dir``; return ``(pairs with path_a/path_b, missing stems)``.

    ``path_a`` / ``path_b`` are absolute paths, or "" where no file with any of ``extensions`` exists;
    ``missing`` lists the missing ``name/name_0001`` stems (sorted, unique).
    """
    root = Path(images_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"images folder not found: {root}")
    found: dict[str, str] = {}

    def locate(stem: str) -> str:
        if stem not in found:
            found[stem] = next(
                (str(root / f"{stem}{ext}") for ext in extensions if (root / f"{stem}{ext}").is_file()), ""
            )
        return found[stem]

    df = pairs.pairs.copy()
    df["path_a"] = [locate(image_stem(n, k)) for n, k in zip(df["name_a"], df["num_a"])]
    df["path_b"] = [locate(image_stem(n, k)) for n, k in zip(df["name_b"], df["num_b"])]
    missing = sorted(s for s, f in found.items() if not f)
    return df, missing


def generate_pairs(
    images: Mapping[str, Sequence[int]], num_folds: int = 10, pairs_per_half: int = 300, seed: int = 0
) -> LFWPairs:
    """LFW-style pairs from ``{identity name: [image numbers]}``, identity-disjoint folds (as LFW View 2).

    Identities (sorted, then permuted with ``seed``) are dealt round-robin to the folds. Per fold:
    ``pairs_per_half`` distinct same-identity pairs (two different images of one identity) and as many
    distinct different-identity pairs, all drawn from that fold's identities only.
    """
    names = sorted(images)
    if len(names) < 2 * num_folds:
        raise ValueError(f"need >= 2 identities per fold: {len(names)} identities for {num_folds} folds")
    rng = seeds.LFW_FOLDS.rng(seed)
    order = rng.permutation(len(names))
    fold_of = np.empty(len(names), dtype=int)
    fold_of[order] = np.arange(len(names)) % num_folds
    rows = []
    for k in range(num_folds):
        members = [names[i] for i in range(len(names)) if fold_of[i] == k]
        frng = seeds.LFW_FOLD_PAIRS.rng(seed, k)
        candidates = [
            (n, a, b) for n in members for i, a in enumerate(sorted(images[n])) for b in sorted(images[n])[i + 1 :]
        ]
        if len(candidates) < pairs_per_half:
            raise ValueError(
                f"fold {k}: only {len(candidates)} same-identity pairs possible from {len(members)} "
                f"identities, need {pairs_per_half}"
            )
        for j in sorted(frng.choice(len(candidates), pairs_per_half, replace=False)):
            n, a, b = candidates[j]
            rows.append((k, True, n, a, n, b))
        seen: set[tuple] = set()
        tries = 0
        while len(seen) < pairs_per_half:
            tries += 1
            if tries > 100 * pairs_per_half:
                raise ValueError(f"fold {k}: cannot draw {pairs_per_half} distinct different-identity pairs")
            i, j = frng.choice(len(members), 2, replace=False)
            na, nb = members[i], members[j]
            a, b = int(frng.choice(list(images[na]))), int(frng.choice(list(images[nb])))
            key = tuple(sorted([(na, a), (nb, b)]))
            if key in seen:
                continue
            seen.add(key)
            rows.append((k, False, na, a, nb, b))
    df = pd.DataFrame(rows, columns=["fold", "issame", "name_a", "num_a", "name_b", "num_b"])
    df["num_a"] = df["num_a"].astype(int)
    df["num_b"] = df["num_b"].astype(int)
    df["line"] = np.arange(len(df)) + 2
    return LFWPairs(num_folds, pairs_per_half, df[list(PAIR_COLUMNS)])
