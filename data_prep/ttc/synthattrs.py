"""Synthetic face attributes with a known correlation structure (embedded stand-in for CelebA).

Each image is a fresh identity from :func:`data_prep.synthfaces.sample_identity`, whose binary attributes
come from :func:`data_prep.synthfaces.sample_attributes` (a Gaussian copula with documented latent
correlations: facial hair driven by ``male``; smiling with high cheekbones; makeup anti-related to facial
hair, lipstick following makeup; eyeglasses independent), ``wearing_lipstick`` included (drawn from its own
stream ``data_prep.seeds.ATTRIBUTE_LIPSTICK``). The face is drawn with those attributes by
:func:`data_prep.synthfaces.render_face` (neutral expression, nuisance on) at twice the output size, then
converted to grayscale, histogram-equalised and area-resized -- the paper's preprocessing (Sec. 4).

The tasks are Table 4's seven CelebA attributes (:data:`SYNTH_TASKS`). ``meta["phi"]`` is the ground-truth
binary (phi) correlation between the tasks, ``meta["groups"]`` the generator's groups, and
``meta["label_noise"]`` the share of faces whose drawing contradicts a label (:func:`label_noise_rates`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from data_prep import seeds, synthfaces
from data_prep.ttc.common import TaskData

#: Table 4's attributes in the generator's spelling.
SYNTH_TASKS: tuple[str, ...] = (
    "goatee",
    "heavy_makeup",
    "high_cheekbones",
    "no_beard",
    "sideburns",
    "smiling",
    "wearing_lipstick",
)
#: The CelebA attribute each synthetic task stands for (paper columns of Tables 4 and 6).
CELEBA_NAME = {
    "goatee": "Goatee",
    "heavy_makeup": "Heavy_Makeup",
    "high_cheekbones": "High_Cheekbones",
    "no_beard": "No_Beard",
    "sideburns": "Sideburns",
    "smiling": "Smiling",
    "wearing_lipstick": "Wearing_Lipstick",
    "mustache": "Mustache",
    "eyeglasses": "Eyeglasses",
}
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def label_noise_rates(n: int = 200_000, seed: int = 0) -> dict[str, float]:
    """Share of faces whose drawing contradicts their label, per attribute, from ``n`` attribute draws.

    :func:`data_prep.synthfaces.render_face` draws every attribute as labelled except one case: a beard is
    drawn only on male faces, so a female face labelled ``no_beard = 0`` shows no beard. Every other label
    is drawn as given (rate 0; ``wearing_lipstick`` too: on these faces the lips wear lipstick exactly when it
    is set, heavy makeup or not). How visible an attribute is at a small size is another matter, not counted.
    """
    drawn = synthfaces.sample_attribute_matrix(n, np.random.default_rng(seed))
    col = {a: k for k, a in enumerate(synthfaces.ATTRIBUTES)}
    rates = {a: 0.0 for a in synthfaces.ATTRIBUTES}
    rates["no_beard"] = float(((~drawn[:, col["no_beard"]]) & (~drawn[:, col["male"]])).mean())
    return rates


def render_attribute_face(seed: int, split: str, index: int, size: int) -> tuple[np.ndarray, dict[str, bool]]:
    """One deterministic sample: (float32 (size, size) in [0, 1], its attribute dict)."""
    rng = seeds.ATTRIBUTE_FACE.rng(seed, _SPLIT_CODES[split], index)
    identity = synthfaces.sample_identity(rng, seeds.ATTRIBUTE_LIPSTICK.rng(seed, _SPLIT_CODES[split], index))
    attrs = dict(identity["attributes"])
    rgb = synthfaces.render_face(identity, expression=0, intensity=0.0, rng=rng, size=2 * size, attributes=attrs)
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32) / 255.0, attrs


def make_synthattrs(
    n_train: int = 4000,
    n_val: int = 600,
    n_test: int = 1500,
    size: int = 32,
    tasks: Sequence[str] = SYNTH_TASKS,
    seed: int = 0,
    progress: bool = True,
) -> TaskData:
    """Renders the synthetic attribute dataset (about 2 ms per 32 px image on one core).

    Args:
        n_train, n_val, n_test: images per split (each a distinct identity).
        size: output side (grayscale, one channel).
        tasks: attribute names from :data:`data_prep.synthfaces.ATTRIBUTES`.
        seed: sample ``i`` of split ``s`` uses stream ``data_prep.seeds.ATTRIBUTE_FACE`` keyed by ``(s, i)``.
    """
    unknown = [t for t in tasks if t not in synthfaces.ATTRIBUTES]
    if unknown:
        raise KeyError(f"unknown attributes {unknown}; the generator draws {list(synthfaces.ATTRIBUTES)}")
    if min(n_train, n_val, n_test) < 1 or size < 8:
        raise ValueError("need at least one image per split and size >= 8")
    splits = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        images = np.empty((n, size, size, 1), dtype=np.float32)
        labels = np.empty((n, len(tasks)), dtype=np.int8)
        for i in tqdm(range(n), desc=f"synthattrs {split}", disable=not progress, mininterval=2.0):
            image, attrs = render_attribute_face(seed, split, i, size)
            images[i, ..., 0] = image
            labels[i] = [int(attrs[t]) for t in tasks]
        splits[split] = (images, labels)
    index = [synthfaces.ATTRIBUTES.index(t) for t in tasks]
    phi = synthfaces.attribute_correlation()[np.ix_(index, index)]
    latent = np.asarray(synthfaces.ATTRIBUTE_LATENT_CORRELATION)[np.ix_(index, index)]
    groups = {g: [a for a in members if a in tasks] for g, members in synthfaces.ATTRIBUTE_GROUPS.items()}
    return TaskData(
        name="synthattrs",
        task_names=list(tasks),
        splits=splits,
        meta=dict(
            source="data_prep.synthfaces (sample_identity/sample_attributes/render_face)",
            size=size,
            seed=seed,
            phi=np.round(phi, 4).tolist(),
            latent_correlation=np.round(latent, 4).tolist(),
            groups={g: m for g, m in groups.items() if m},
            prevalence={t: synthfaces.ATTRIBUTE_PREVALENCE[t] for t in tasks},
            label_noise={t: round(r, 4) for t, r in label_noise_rates().items() if t in tasks},
        ),
    )
