"""Binary face attributes with a known correlation structure (a Gaussian copula).

Every identity draws its attributes here (:func:`sample_attributes`), so they shape the CK+-layout
faces (beards, makeup, cheekbones, pale skin) as well as the attribute-task data of
:mod:`data_prep.ttc.synthattrs`, whose labels are these attributes.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

#: Binary attributes, CelebA-style names. Static ones are part of an identity's look; the
#: "state" ones (smiling, mouth_slightly_open) are only drawn when passed to render_face.
ATTRIBUTES: tuple[str, ...] = (
    "male",
    "no_beard",
    "goatee",
    "sideburns",
    "mustache",
    "smiling",
    "high_cheekbones",
    "mouth_slightly_open",
    "eyeglasses",
    "bangs",
    "heavy_makeup",
    "pale_skin",
)
STATE_ATTRIBUTES: tuple[str, ...] = ("smiling", "mouth_slightly_open")
#: Groups of related attributes (the relatedness a TTC model should discover):
#: facial hair is driven by ``male``; smiling drives high_cheekbones and an open mouth;
#: makeup is anti-related to ``male``; eyeglasses and pale_skin are independent of all.
ATTRIBUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "facial_hair": ("male", "no_beard", "goatee", "sideburns", "mustache"),
    "smile": ("smiling", "high_cheekbones", "mouth_slightly_open"),
    "grooming": ("heavy_makeup", "bangs"),
    "independent": ("eyeglasses", "pale_skin"),
}
#: Marginal prevalence P(attribute = 1) (roughly CelebA's).
ATTRIBUTE_PREVALENCE: dict[str, float] = {
    "male": 0.42,
    "no_beard": 0.83,
    "goatee": 0.06,
    "sideburns": 0.06,
    "mustache": 0.04,
    "smiling": 0.48,
    "high_cheekbones": 0.45,
    "mouth_slightly_open": 0.48,
    "eyeglasses": 0.07,
    "bangs": 0.15,
    "heavy_makeup": 0.39,
    "pale_skin": 0.04,
}
#: Latent correlations of the related pairs (every other pair: 0), before the projection below.
_LATENT_PAIRS: dict[tuple[str, str], float] = {
    ("male", "no_beard"): -0.85,
    ("male", "goatee"): 0.8,
    ("male", "sideburns"): 0.8,
    ("male", "mustache"): 0.8,
    ("no_beard", "goatee"): -0.85,
    ("no_beard", "sideburns"): -0.8,
    ("no_beard", "mustache"): -0.8,
    ("goatee", "sideburns"): 0.7,
    ("goatee", "mustache"): 0.75,
    ("sideburns", "mustache"): 0.65,
    ("smiling", "high_cheekbones"): 0.85,
    ("smiling", "mouth_slightly_open"): 0.6,
    ("high_cheekbones", "mouth_slightly_open"): 0.5,
    ("male", "heavy_makeup"): -0.85,
    ("male", "bangs"): -0.35,
    ("heavy_makeup", "bangs"): 0.3,
    ("no_beard", "heavy_makeup"): 0.7,
    ("goatee", "heavy_makeup"): -0.65,
    ("sideburns", "heavy_makeup"): -0.65,
    ("mustache", "heavy_makeup"): -0.65,
    ("male", "high_cheekbones"): -0.25,
    ("heavy_makeup", "high_cheekbones"): 0.25,
}


def _latent_correlation() -> np.ndarray:
    """Latent Gaussian correlation matrix of :data:`ATTRIBUTES`: the pairs above, projected to the
    nearest positive-definite matrix with unit diagonal (a tiny adjustment)."""
    index = {a: i for i, a in enumerate(ATTRIBUTES)}
    corr = np.eye(len(ATTRIBUTES))
    for (a, b), r in _LATENT_PAIRS.items():
        corr[index[a], index[b]] = corr[index[b], index[a]] = r
    eigenvalues, eigenvectors = np.linalg.eigh(corr)
    corr = (eigenvectors * np.clip(eigenvalues, 1e-3, None)) @ eigenvectors.T
    scale = np.sqrt(np.diag(corr))
    return corr / np.outer(scale, scale)


#: Ground truth: the latent correlation of the Gaussian copula behind :func:`sample_attributes`.
ATTRIBUTE_LATENT_CORRELATION: np.ndarray = _latent_correlation()
ATTRIBUTE_LATENT_CORRELATION.setflags(write=False)
#: ``attr_k = 1`` when its latent value exceeds ``Phi^-1(1 - p_k)``.
ATTRIBUTE_THRESHOLDS: np.ndarray = np.array([NormalDist().inv_cdf(1.0 - ATTRIBUTE_PREVALENCE[a]) for a in ATTRIBUTES])
ATTRIBUTE_THRESHOLDS.setflags(write=False)
_CHOLESKY = np.linalg.cholesky(ATTRIBUTE_LATENT_CORRELATION)


def sample_attributes(rng: np.random.Generator) -> dict[str, bool]:
    """Draw one binary attribute vector.

    Gaussian copula: ``z ~ N(0, ATTRIBUTE_LATENT_CORRELATION)``, ``attr_k = z_k > Phi^-1(1 - p_k)``
    with ``p_k = ATTRIBUTE_PREVALENCE[k]``. The ground-truth binary correlations follow from the
    latent ones (:func:`attribute_correlation` estimates them); :data:`ATTRIBUTE_GROUPS` lists the
    related groups.
    """
    z = _CHOLESKY @ rng.standard_normal(len(ATTRIBUTES))
    return {a: bool(v) for a, v in zip(ATTRIBUTES, z > ATTRIBUTE_THRESHOLDS)}


def sample_attribute_matrix(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` attribute vectors at once: a bool ``(n, len(ATTRIBUTES))`` array, columns in :data:`ATTRIBUTES`
    order (the same copula as :func:`sample_attributes`, drawn row-wise from one ``(n, k)`` normal block)."""
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    z = rng.standard_normal((int(n), len(ATTRIBUTES))) @ _CHOLESKY.T
    return z > ATTRIBUTE_THRESHOLDS


def attribute_correlation(n: int = 200_000, seed: int = 0) -> np.ndarray:
    """Monte-Carlo estimate of the binary (phi) correlation matrix of :func:`sample_attributes`."""
    x = sample_attribute_matrix(n, np.random.default_rng(seed)).astype(np.float64)
    return np.corrcoef(x, rowvar=False)
