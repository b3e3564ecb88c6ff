"""The experiment's view of a prepared dataset: manifest, folds, pairs, per-fold splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import datasets, seeds
from data_prep.folds import read_folds
from data_prep.pairs import make_pairs, read_pairs
from data_prep.prepare import read_manifest
from data_prep.publish import IncompleteDatasetError, check_counts, is_complete, recreate_command, require_complete
from experiments.face_expression.config import ExperimentConfig


@dataclass
class PreparedData:
    """A prepared dataset with the run's expression protocol applied."""

    root: Path
    manifest: pd.DataFrame
    folds: pd.DataFrame
    pairs: pd.DataFrame
    expression_classes: list[str]

    @property
    def fold_ids(self) -> list[int]:
        return sorted(int(f) for f in self.folds["fold"].unique())

    def split(self, test_fold: int, validation_share: float, seed: int) -> FoldSplit:
        """Train / validation / test subjects of one fold (validation drawn from training subjects)."""
        fold_of = dict(zip(self.folds["subject"].astype(str), self.folds["fold"].astype(int)))
        if test_fold not in set(fold_of.values()):
            raise ValueError(f"fold {test_fold} not in folds.csv (has {self.fold_ids})")
        test = sorted(s for s, f in fold_of.items() if f == test_fold)
        rest = sorted(s for s, f in fold_of.items() if f != test_fold)
        rng = seeds.VALIDATION_SPLIT.rng(seed, test_fold)
        n_val = max(2, int(round(validation_share * len(rest))))
        validation = sorted(rng.choice(rest, size=n_val, replace=False).tolist())
        train = sorted(set(rest) - set(validation))
        subject = self.manifest["subject"].astype(str)
        rows = {
            name: self.manifest[subject.isin(group)].reset_index(drop=True)
            for name, group in (("train", train), ("validation", validation), ("test", test))
        }
        val_pairs = make_pairs(rows["validation"], pd.DataFrame({"subject": validation, "fold": 0}), seed=seed)
        return FoldSplit(
            test_fold,
            train,
            validation,
            test,
            rows["train"],
            rows["validation"],
            rows["test"],
            val_pairs,
            self.pairs[self.pairs["fold"] == test_fold].reset_index(drop=True),
        )


class ImageStore:
    """Every manifest image decoded once into memory (uint8 RGB), for epoch-by-epoch training.

    CK+ (1,308 images), Oulu-CASIA VL-Strong (1,920) and synthfaces fit easily at their
    crop sizes; decoding PNGs once instead of every epoch takes the decoder off the
    training loop. Images of different sizes are resized to the first image's size.
    """

    def __init__(self, root: Path, paths: list[str], progress: bool = False):
        import cv2
        from tqdm.auto import tqdm

        self.index = {p: i for i, p in enumerate(dict.fromkeys(paths))}
        images, shape = [], None
        for path in tqdm(list(self.index), desc="decoding images", disable=not progress, leave=False):
            image = cv2.imread(str(Path(root) / path), cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"cannot read image {Path(root) / path}")
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            shape = shape or image.shape[:2]
            if image.shape[:2] != shape:
                image = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
            images.append(image)
        self.images = np.stack(images)

    def take(self, paths) -> np.ndarray:
        missing = [p for p in paths if p not in self.index]
        if missing:
            raise KeyError(f"{len(missing)} images not in the store, e.g. {missing[0]}")
        return self.images[[self.index[p] for p in paths]]


@dataclass
class FoldSplit:
    fold: int
    train_subjects: list[str]
    validation_subjects: list[str]
    test_subjects: list[str]
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_pairs: pd.DataFrame
    test_pairs: pd.DataFrame


def ensure_prepared(config: ExperimentConfig, progress: bool = True) -> Path:
    """Prepare ``data_dir`` unless it is complete: synthfaces is generated, CK+/Oulu read from data_root.

    Complete means prepare finished (its ``COMPLETE`` marker, :mod:`data_prep.publish`). A half-made
    folder is completed the same way (prepare resumes: crops already made are kept); without
    data_root a half-made CK+/Oulu folder is refused with the command that completes it.
    """
    root = Path(config.data_dir)
    if is_complete(root):
        return root
    spec = datasets.get(config.dataset)
    started = root.is_dir() and any(root.iterdir())
    if not spec.needs_raw_root:
        why = " (it has no COMPLETE marker: interrupted, or made by an older version)" if started else ""
        print(f"[dynamic-mtl] generating the embedded {spec.name} dataset in {root}{why} ...", flush=True)
        spec.prepare_function()(root, num_identities=config.synthfaces_identities, seed=config.seed, progress=progress)
    elif config.data_root is None:
        if started:
            require_complete(root, config.dataset)  # raises, naming what is missing and how to complete it
        raise FileNotFoundError(
            f"{root}/manifest.csv not found and no data_root given: pass "
            f"DATA_ROOT=/path/to/{config.dataset} (the raw dataset) to prepare it"
        )
    else:
        spec.prepare_function()(config.data_root, root, progress=progress)
    return root


def load_prepared(config: ExperimentConfig) -> PreparedData:
    """Manifest, folds and pairs of ``data_dir`` with the expression protocol applied.

    Refuses (:class:`data_prep.publish.IncompleteDatasetError`, one line naming the folder, what is
    missing and the command that completes it) a folder whose prepare did not finish, or whose
    tables do not match the counts of its ``summary.json``.

    An expression protocol of another dataset (``oulu6``: the 6 Oulu-CASIA classes anger, disgust,
    fear, happy, sadness, surprise; data_prep/datasets.py) keeps its classes and marks every other
    frame (neutral, contempt) as unlabelled (-1): those frames still serve as verification
    references but are not expression training or test samples.
    """
    root = Path(config.data_dir)
    summary = require_complete(root, config.dataset)
    manifest = read_manifest(root)
    try:
        folds = read_folds(root / "folds.csv")
        pairs = read_pairs(root / "pairs.csv")
    except ValueError as err:  # empty or torn CSV (pandas' parser errors are ValueErrors)
        raise IncompleteDatasetError(
            f"{root}: {str(err).splitlines()[0]}: run `{recreate_command(root, config.dataset)}`"
        ) from err
    check_counts(root, summary, manifest, folds, pairs)
    classes = summary.get("expression_classes")
    if classes is None:
        names = manifest[manifest["expression"] >= 0].drop_duplicates("expression").sort_values("expression")
        classes = names["expression_name"].tolist()
    owner = datasets.protocol_owner(config.expression_protocol)
    if owner is not None and owner.name != config.dataset:
        protocol = owner.expression_protocols[config.expression_protocol]
        index = {name: code for code, name in protocol.items()}
        manifest = manifest.assign(expression=manifest["expression_name"].map(index).fillna(-1).astype(int))
        classes = [protocol[i] for i in range(len(protocol))]
    return PreparedData(root, manifest, folds, pairs, list(classes))
